package v2

import (
	"context"

	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/webhook/fielderrors"
)

// +kubebuilder:webhook:path=/mutate-firewall-metal-stack-io-v2-firewall,mutating=true,failurePolicy=fail,sideEffects=None,groups=firewall.metal-stack.io,resources=firewalls,verbs=create;update,versions=v2,name=mfirewall-v2.firewall.metal-stack.io,admissionReviewVersions=v1,patch=`{"matchConditions":[{"name":"creates-or-changes-what-is-checked","expression":"request.operation != 'UPDATE' || (has(object.spec) ? object.spec : {}) != (has(oldObject.spec) ? oldObject.spec : {}) || (has(object.distance) ? object.distance : -1) != (has(oldObject.distance) ? oldObject.distance : -1) || ['firewall.metal-stack.io/paused', 'firewall.metal-stack.io/no-controller-connection', 'firewall.metal-stack.io/weight', 'firewall.metal-stack.io/workload-kubeconfig'].exists(k, has(object.metadata.annotations) && k in object.metadata.annotations && !(has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations && oldObject.metadata.annotations[k] == object.metadata.annotations[k]))"}]}`
// +kubebuilder:webhook:path=/validate-firewall-metal-stack-io-v2-firewall,mutating=false,failurePolicy=fail,sideEffects=None,groups=firewall.metal-stack.io,resources=firewalls,verbs=create;update,versions=v2,name=vfirewall-v2.firewall.metal-stack.io,admissionReviewVersions=v1,patch=`{"matchConditions":[{"name":"creates-or-changes-what-is-checked","expression":"request.operation != 'UPDATE' || (has(object.spec) ? object.spec : {}) != (has(oldObject.spec) ? oldObject.spec : {}) || (has(object.distance) ? object.distance : -1) != (has(oldObject.distance) ? oldObject.distance : -1) || ['firewall.metal-stack.io/paused', 'firewall.metal-stack.io/no-controller-connection', 'firewall.metal-stack.io/weight', 'firewall.metal-stack.io/workload-kubeconfig'].exists(k, has(object.metadata.annotations) && k in object.metadata.annotations && !(has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations && oldObject.metadata.annotations[k] == object.metadata.annotations[k]))"}]}`

// SetupFirewallWebhookWithManager registers the Firewall defaulting and validating webhooks.
func SetupFirewallWebhookWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &v2.Firewall{}).
		WithDefaulter(&FirewallDefaulter{}).
		WithValidator(&FirewallValidator{}).
		Complete()
}

// FirewallDefaulter sets spec.interval. It has no side effects.
type FirewallDefaulter struct{}

var _ admission.Defaulter[*v2.Firewall] = &FirewallDefaulter{}

// Default implements admission.Defaulter.
func (d *FirewallDefaulter) Default(_ context.Context, fw *v2.Firewall) error {
	defaultSpec(&fw.Spec)
	return nil
}

// FirewallValidator checks what the CRD's CEL rules cannot.
type FirewallValidator struct{}

var _ admission.Validator[*v2.Firewall] = &FirewallValidator{}

// ValidateCreate implements admission.Validator.
func (v *FirewallValidator) ValidateCreate(_ context.Context, fw *v2.Firewall) (admission.Warnings, error) {
	errs, warnings := validateFirewall(fw)
	return warnings, invalid(fw.Name, "Firewall", errs)
}

// ValidateUpdate implements admission.Validator.
func (v *FirewallValidator) ValidateUpdate(_ context.Context, oldFW, fw *v2.Firewall) (admission.Warnings, error) {
	errs, warnings := validateFirewall(fw)
	oldErrs, _ := validateFirewall(oldFW)
	errs = fielderrors.Ratchet(errs, oldErrs)
	errs = append(errs, validateSpecUpdate(&oldFW.Spec, &fw.Spec, field.NewPath("spec"))...)
	return warnings, invalid(fw.Name, "Firewall", errs)
}

// ValidateDelete implements admission.Validator; deletion is not validated.
func (v *FirewallValidator) ValidateDelete(context.Context, *v2.Firewall) (admission.Warnings, error) {
	return nil, nil
}

func validateFirewall(fw *v2.Firewall) (field.ErrorList, admission.Warnings) {
	errs := validateAnnotations(fw.Annotations, field.NewPath("metadata", "annotations"))
	specErrs, warnings := validateSpec(&fw.Spec, field.NewPath("spec"))
	return append(errs, specErrs...), warnings
}

// invalid turns a field.ErrorList into the API's Invalid error (HTTP 422), or nil.
func invalid(name, kind string, errs field.ErrorList) error {
	return fielderrors.Invalid(v2.GroupVersion.WithKind(kind).GroupKind(), name, errs)
}
