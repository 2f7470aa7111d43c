package v2

import (
	"context"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/webhook/fielderrors"
)

// +kubebuilder:webhook:path=/mutate-firewall-metal-stack-io-v2-firewalldeployment,mutating=true,failurePolicy=fail,sideEffects=None,groups=firewall.metal-stack.io,resources=firewalldeployments,verbs=create;update,versions=v2,name=mfirewalldeployment-v2.firewall.metal-stack.io,admissionReviewVersions=v1,patch=`{"matchConditions":[{"name":"creates-or-changes-what-is-checked","expression":"request.operation != 'UPDATE' || (has(object.spec) ? object.spec : {}) != (has(oldObject.spec) ? oldObject.spec : {}) || (has(object.distance) ? object.distance : -1) != (has(oldObject.distance) ? oldObject.distance : -1) || ['firewall.metal-stack.io/paused', 'firewall.metal-stack.io/no-controller-connection', 'firewall.metal-stack.io/weight', 'firewall.metal-stack.io/workload-kubeconfig'].exists(k, has(object.metadata.annotations) && k in object.metadata.annotations && !(has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations && oldObject.metadata.annotations[k] == object.metadata.annotations[k]))"}]}`
// +kubebuilder:webhook:path=/validate-firewall-metal-stack-io-v2-firewalldeployment,mutating=false,failurePolicy=fail,sideEffects=None,groups=firewall.metal-stack.io,resources=firewalldeployments,verbs=create;update,versions=v2,name=vfirewalldeployment-v2.firewall.metal-stack.io,admissionReviewVersions=v1,patch=`{"matchConditions":[{"name":"creates-or-changes-what-is-checked","expression":"request.operation != 'UPDATE' || (has(object.spec) ? object.spec : {}) != (has(oldObject.spec) ? oldObject.spec : {}) || (has(object.distance) ? object.distance : -1) != (has(oldObject.distance) ? oldObject.distance : -1) || ['firewall.metal-stack.io/paused', 'firewall.metal-stack.io/no-controller-connection', 'firewall.metal-stack.io/weight', 'firewall.metal-stack.io/workload-kubeconfig'].exists(k, has(object.metadata.annotations) && k in object.metadata.annotations && !(has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations && oldObject.metadata.annotations[k] == object.metadata.annotations[k]))"}]}`

// SetupFirewallDeploymentWebhookWithManager registers the FirewallDeployment defaulting and
// validating webhooks.
func SetupFirewallDeploymentWebhookWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &v2.FirewallDeployment{}).
		WithDefaulter(&FirewallDeploymentDefaulter{}).
		WithValidator(&FirewallDeploymentValidator{}).
		Complete()
}

// FirewallDeploymentDefaulter sets the strategy, the selector (on create), the template's
// interval and, for Gardener's deployments without userdata, the generated seed kubeconfig entry
// (defaultGardenerUserdata). Unlike upstream it has no side effects: no RBAC, no tokens; the
// controller provisions the agent identity and renders userdata from userdataContents.
type FirewallDeploymentDefaulter struct{}

var _ admission.Defaulter[*v2.FirewallDeployment] = &FirewallDeploymentDefaulter{}

// Default implements admission.Defaulter.
func (d *FirewallDeploymentDefaulter) Default(ctx context.Context, deploy *v2.FirewallDeployment) error {
	if deploy.Spec.Strategy == "" {
		deploy.Spec.Strategy = v2.StrategyRollingUpdate
	}
	// The selector is immutable, so it is only defaulted when the object is created.
	if len(deploy.Spec.Selector) == 0 && len(deploy.Spec.Template.ObjectMeta.Labels) > 0 && isCreate(ctx) {
		deploy.Spec.Selector = maps.Clone(deploy.Spec.Template.ObjectMeta.Labels)
	}
	defaultSpec(&deploy.Spec.Template.Spec)
	defaultGardenerUserdata(deploy)
	return nil
}

// FirewallDeploymentValidator checks what the CRD's CEL rules cannot.
type FirewallDeploymentValidator struct{}

var _ admission.Validator[*v2.FirewallDeployment] = &FirewallDeploymentValidator{}

// ValidateCreate implements admission.Validator.
func (v *FirewallDeploymentValidator) ValidateCreate(_ context.Context, deploy *v2.FirewallDeployment) (admission.Warnings, error) {
	errs, warnings := validateFirewallDeployment(deploy)
	return warnings, invalid(deploy.Name, "FirewallDeployment", errs)
}

// ValidateUpdate implements admission.Validator. The strategy may change only while the
// deployment is converged; the template metadata stays mutable, the selector immutable.
func (v *FirewallDeploymentValidator) ValidateUpdate(_ context.Context, oldDeploy, deploy *v2.FirewallDeployment) (admission.Warnings, error) {
	errs, warnings := validateFirewallDeployment(deploy)
	oldErrs, _ := validateFirewallDeployment(oldDeploy)
	errs = fielderrors.Ratchet(errs, oldErrs)

	spec := field.NewPath("spec")
	errs = append(errs, validateSelectorUpdate(oldDeploy.Spec.Selector, deploy.Spec.Selector, spec.Child("selector"))...)
	errs = append(errs, validateSpecUpdate(&oldDeploy.Spec.Template.Spec, &deploy.Spec.Template.Spec, spec.Child("template", "spec"))...)
	if strategy(oldDeploy) != strategy(deploy) {
		// The status of the stored object: a status change in the same request is ignored anyway.
		st := oldDeploy.Status
		// updatedReadyReplicas: the latest set's ready firewalls (readyReplicas counts old sets too).
		if st.TargetReplicas != st.UpdatedReadyReplicas {
			errs = append(errs, field.Forbidden(spec.Child("strategy"), fmt.Sprintf(
				"may only change when the deployment has converged (status.updatedReadyReplicas %d, status.targetReplicas %d); wait for the rollout to finish",
				st.UpdatedReadyReplicas, st.TargetReplicas)))
		}
	}
	return warnings, invalid(deploy.Name, "FirewallDeployment", errs)
}

// ValidateDelete implements admission.Validator; deletion is not validated.
func (v *FirewallDeploymentValidator) ValidateDelete(context.Context, *v2.FirewallDeployment) (admission.Warnings, error) {
	return nil, nil
}

func strategy(deploy *v2.FirewallDeployment) v2.FirewallUpdateStrategy {
	if deploy.Spec.Strategy == "" {
		return v2.StrategyRollingUpdate
	}
	return deploy.Spec.Strategy
}

func validateFirewallDeployment(deploy *v2.FirewallDeployment) (field.ErrorList, admission.Warnings) {
	errs := validateAnnotations(deploy.Annotations, field.NewPath("metadata", "annotations"))
	tmplErrs, warnings := validateTemplate(deploy.Spec.Selector, &deploy.Spec.Template, field.NewPath("spec"))
	return append(errs, tmplErrs...), warnings
}
