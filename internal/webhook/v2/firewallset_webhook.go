package v2

import (
	"context"
	"maps"

	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/webhook/fielderrors"
)

// +kubebuilder:webhook:path=/mutate-firewall-metal-stack-io-v2-firewallset,mutating=true,failurePolicy=fail,sideEffects=None,groups=firewall.metal-stack.io,resources=firewallsets,verbs=create;update,versions=v2,name=mfirewallset-v2.firewall.metal-stack.io,admissionReviewVersions=v1,patch=`{"matchConditions":[{"name":"creates-or-changes-what-is-checked","expression":"request.operation != 'UPDATE' || (has(object.spec) ? object.spec : {}) != (has(oldObject.spec) ? oldObject.spec : {}) || (has(object.distance) ? object.distance : -1) != (has(oldObject.distance) ? oldObject.distance : -1) || ['firewall.metal-stack.io/paused', 'firewall.metal-stack.io/no-controller-connection', 'firewall.metal-stack.io/weight', 'firewall.metal-stack.io/workload-kubeconfig'].exists(k, has(object.metadata.annotations) && k in object.metadata.annotations && !(has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations && oldObject.metadata.annotations[k] == object.metadata.annotations[k]))"}]}`
// +kubebuilder:webhook:path=/validate-firewall-metal-stack-io-v2-firewallset,mutating=false,failurePolicy=fail,sideEffects=None,groups=firewall.metal-stack.io,resources=firewallsets,verbs=create;update,versions=v2,name=vfirewallset-v2.firewall.metal-stack.io,admissionReviewVersions=v1,patch=`{"matchConditions":[{"name":"creates-or-changes-what-is-checked","expression":"request.operation != 'UPDATE' || (has(object.spec) ? object.spec : {}) != (has(oldObject.spec) ? oldObject.spec : {}) || (has(object.distance) ? object.distance : -1) != (has(oldObject.distance) ? oldObject.distance : -1) || ['firewall.metal-stack.io/paused', 'firewall.metal-stack.io/no-controller-connection', 'firewall.metal-stack.io/weight', 'firewall.metal-stack.io/workload-kubeconfig'].exists(k, has(object.metadata.annotations) && k in object.metadata.annotations && !(has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations && oldObject.metadata.annotations[k] == object.metadata.annotations[k]))"}]}`

// SetupFirewallSetWebhookWithManager registers the FirewallSet defaulting and validating webhooks.
func SetupFirewallSetWebhookWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &v2.FirewallSet{}).
		WithDefaulter(&FirewallSetDefaulter{}).
		WithValidator(&FirewallSetValidator{}).
		Complete()
}

// FirewallSetDefaulter sets the selector (on create) and the template's interval. It has no
// side effects.
type FirewallSetDefaulter struct{}

var _ admission.Defaulter[*v2.FirewallSet] = &FirewallSetDefaulter{}

// Default implements admission.Defaulter.
func (d *FirewallSetDefaulter) Default(ctx context.Context, set *v2.FirewallSet) error {
	// The selector is immutable, so it is only defaulted when the object is created.
	if len(set.Spec.Selector) == 0 && len(set.Spec.Template.ObjectMeta.Labels) > 0 && isCreate(ctx) {
		set.Spec.Selector = maps.Clone(set.Spec.Template.ObjectMeta.Labels)
	}
	defaultSpec(&set.Spec.Template.Spec)
	return nil
}

// FirewallSetValidator checks what the CRD's CEL rules cannot.
type FirewallSetValidator struct{}

var _ admission.Validator[*v2.FirewallSet] = &FirewallSetValidator{}

// ValidateCreate implements admission.Validator.
func (v *FirewallSetValidator) ValidateCreate(_ context.Context, set *v2.FirewallSet) (admission.Warnings, error) {
	errs, warnings := validateFirewallSet(set)
	return warnings, invalid(set.Name, "FirewallSet", errs)
}

// ValidateUpdate implements admission.Validator. The template metadata stays mutable (upstream
// froze it); the selector stays immutable.
func (v *FirewallSetValidator) ValidateUpdate(_ context.Context, oldSet, set *v2.FirewallSet) (admission.Warnings, error) {
	errs, warnings := validateFirewallSet(set)
	oldErrs, _ := validateFirewallSet(oldSet)
	errs = fielderrors.Ratchet(errs, oldErrs)
	spec := field.NewPath("spec")
	errs = append(errs, validateSelectorUpdate(oldSet.Spec.Selector, set.Spec.Selector, spec.Child("selector"))...)
	errs = append(errs, validateSpecUpdate(&oldSet.Spec.Template.Spec, &set.Spec.Template.Spec, spec.Child("template", "spec"))...)
	return warnings, invalid(set.Name, "FirewallSet", errs)
}

// ValidateDelete implements admission.Validator; deletion is not validated.
func (v *FirewallSetValidator) ValidateDelete(context.Context, *v2.FirewallSet) (admission.Warnings, error) {
	return nil, nil
}

func validateFirewallSet(set *v2.FirewallSet) (field.ErrorList, admission.Warnings) {
	errs := validateAnnotations(set.Annotations, field.NewPath("metadata", "annotations"))
	tmplErrs, warnings := validateTemplate(set.Spec.Selector, &set.Spec.Template, field.NewPath("spec"))
	return append(errs, tmplErrs...), warnings
}
