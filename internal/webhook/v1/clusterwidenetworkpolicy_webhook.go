// Package v1 holds the validating webhook of the metal-stack.io/v1 ClusterwideNetworkPolicy:
// everything the CRD's CEL rules cannot express, for IPv4 and IPv6. See docs/webhooks.md.
package v1

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/palisade-fw/palisade/api/v1"
	"github.com/palisade-fw/palisade/internal/webhook/fielderrors"
)

// +kubebuilder:webhook:path=/validate-metal-stack-io-v1-clusterwidenetworkpolicy,mutating=false,failurePolicy=fail,sideEffects=None,groups=metal-stack.io,resources=clusterwidenetworkpolicies,verbs=create;update,versions=v1,name=vclusterwidenetworkpolicy-v1.metal-stack.io,admissionReviewVersions=v1,patch=`{"matchConditions":[{"name":"creates-or-changes-what-is-checked","expression":"request.operation != 'UPDATE' || (has(object.spec) ? object.spec : {}) != (has(oldObject.spec) ? oldObject.spec : {}) || (has(object.distance) ? object.distance : -1) != (has(oldObject.distance) ? oldObject.distance : -1) || ['firewall.metal-stack.io/paused', 'firewall.metal-stack.io/no-controller-connection', 'firewall.metal-stack.io/weight', 'firewall.metal-stack.io/workload-kubeconfig'].exists(k, has(object.metadata.annotations) && k in object.metadata.annotations && !(has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations && oldObject.metadata.annotations[k] == object.metadata.annotations[k]))"}]}`

// SetupClusterwideNetworkPolicyWebhookWithManager registers the ClusterwideNetworkPolicy
// validating webhook.
func SetupClusterwideNetworkPolicyWebhookWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &v1.ClusterwideNetworkPolicy{}).
		WithValidator(&ClusterwideNetworkPolicyValidator{}).
		Complete()
}

// ClusterwideNetworkPolicyValidator checks what the CRD's CEL rules cannot.
type ClusterwideNetworkPolicyValidator struct{}

var _ admission.Validator[*v1.ClusterwideNetworkPolicy] = &ClusterwideNetworkPolicyValidator{}

// ValidateCreate implements admission.Validator.
func (v *ClusterwideNetworkPolicyValidator) ValidateCreate(_ context.Context, p *v1.ClusterwideNetworkPolicy) (admission.Warnings, error) {
	errs, warnings := validatePolicy(p)
	return warnings, invalid(p.Name, errs)
}

// ValidateUpdate implements admission.Validator. Errors the stored object has as well are not
// reported, so that a policy admitted before this webhook can still be updated elsewhere.
func (v *ClusterwideNetworkPolicyValidator) ValidateUpdate(_ context.Context, oldP, p *v1.ClusterwideNetworkPolicy) (admission.Warnings, error) {
	errs, warnings := validatePolicy(p)
	oldErrs, _ := validatePolicy(oldP)
	return warnings, invalid(p.Name, fielderrors.Ratchet(errs, oldErrs))
}

// ValidateDelete implements admission.Validator; deletion is not validated.
func (v *ClusterwideNetworkPolicyValidator) ValidateDelete(context.Context, *v1.ClusterwideNetworkPolicy) (admission.Warnings, error) {
	return nil, nil
}

func validatePolicy(p *v1.ClusterwideNetworkPolicy) (field.ErrorList, admission.Warnings) {
	var errs field.ErrorList
	var warnings admission.Warnings
	if p.Namespace != v1.ClusterwideNetworkPolicyNamespace {
		warnings = append(warnings, fmt.Sprintf("metadata.namespace: the policy is in namespace %q and is not enforced; only policies in namespace %q are",
			p.Namespace, v1.ClusterwideNetworkPolicyNamespace))
	}
	spec := field.NewPath("spec")
	for i, rule := range p.Spec.Ingress {
		rp := spec.Child("ingress").Index(i)
		errs = append(errs, validatePorts(rule.Ports, rp.Child("ports"))...)
		for j, block := range rule.From {
			e, w := validateIPBlock(block, rp.Child("from").Index(j))
			errs, warnings = append(errs, e...), append(warnings, w...)
		}
	}
	for i, rule := range p.Spec.Egress {
		rp := spec.Child("egress").Index(i)
		errs = append(errs, validatePorts(rule.Ports, rp.Child("ports"))...)
		for j, block := range rule.To {
			e, w := validateIPBlock(block, rp.Child("to").Index(j))
			errs, warnings = append(errs, e...), append(warnings, w...)
		}
		for j, sel := range rule.ToFQDNs {
			fp := rp.Child("toFQDNs").Index(j)
			if sel.MatchName != "" {
				errs = append(errs, validateDNSName(sel.MatchName, false, fp.Child("matchName"))...)
			}
			if sel.MatchPattern != "" {
				errs = append(errs, validateDNSName(sel.MatchPattern, true, fp.Child("matchPattern"))...)
			}
		}
	}
	return errs, warnings
}

// validateIPBlock parses cidr and except. An except entry of the other address family is an
// error; one outside the block is accepted with a warning, because upstream accepted it and
// existing manifests (cidr 1.1.0.0/24, except 1.1.1.0/16) must keep working.
func validateIPBlock(b v1.IPBlock, p *field.Path) (field.ErrorList, admission.Warnings) {
	var errs field.ErrorList
	var warnings admission.Warnings
	block, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return field.ErrorList{field.Invalid(p.Child("cidr"), b.CIDR, "must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32")}, nil
	}
	if block.Masked() != block {
		warnings = append(warnings, fmt.Sprintf("%s: %s has host bits set; it is used as %s", p.Child("cidr"), b.CIDR, block.Masked()))
	}
	block = block.Masked()
	for i, e := range b.Except {
		ep := p.Child("except").Index(i)
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			errs = append(errs, field.Invalid(ep, e, "must be a CIDR such as 10.1.0.0/16 or 2001:db8:1::/48"))
			continue
		}
		if ex.Addr().Is4() != block.Addr().Is4() {
			errs = append(errs, field.Invalid(ep, e, fmt.Sprintf("must be of the same address family as cidr %s (%s)", b.CIDR, family(block))))
			continue
		}
		ex = ex.Masked()
		if ex.Bits() < block.Bits() || !block.Contains(ex.Addr()) {
			warnings = append(warnings, fmt.Sprintf("%s: %s is not inside cidr %s (accepted for compatibility with upstream manifests)", ep, e, b.CIDR))
		}
	}
	return errs, warnings
}

func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// validatePorts repeats the CEL port checks so that the webhook is complete on its own.
func validatePorts(ports []v1.NetworkPolicyPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, port := range ports {
		pp := p.Index(i)
		if port.Port != nil && (*port.Port < 1 || *port.Port > 65535) {
			errs = append(errs, field.Invalid(pp.Child("port"), *port.Port, "must be between 1 and 65535"))
		}
		if port.EndPort == nil {
			continue
		}
		switch {
		case *port.EndPort < 1 || *port.EndPort > 65535:
			errs = append(errs, field.Invalid(pp.Child("endPort"), *port.EndPort, "must be between 1 and 65535"))
		case port.Port == nil:
			errs = append(errs, field.Required(pp.Child("port"), "must be set when endPort is set"))
		case *port.EndPort < *port.Port:
			errs = append(errs, field.Invalid(pp.Child("endPort"), *port.EndPort, fmt.Sprintf("must be greater than or equal to port %d", *port.Port)))
		}
	}
	return errs
}

// validateDNSName checks a DNS name: labels of 1 to 63 letters, digits, '-' and '_' (not
// starting or ending with '-'), at most 253 characters without the optional trailing dot. A
// pattern may also contain '*'.
func validateDNSName(name string, pattern bool, p *field.Path) field.ErrorList {
	trimmed := strings.TrimSuffix(name, ".")
	if len(trimmed) > 253 {
		return field.ErrorList{field.TooLong(p, name, 253)}
	}
	if trimmed == "" {
		return field.ErrorList{field.Invalid(p, name, "must be a DNS name such as example.com")}
	}
	what := "letters, digits, '-' and '_'"
	if pattern {
		what = "letters, digits, '-', '_' and '*'"
	}
	for _, label := range strings.Split(trimmed, ".") {
		switch {
		case label == "":
			return field.ErrorList{field.Invalid(p, name, "must not contain an empty label (..)")}
		case len(label) > 63:
			return field.ErrorList{field.Invalid(p, name, fmt.Sprintf("label %q is longer than 63 characters", label[:20]+"..."))}
		case strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-"):
			return field.ErrorList{field.Invalid(p, name, fmt.Sprintf("label %q must not start or end with '-'", label))}
		}
		for _, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || pattern && r == '*'
			if !ok {
				return field.ErrorList{field.Invalid(p, name, fmt.Sprintf("label %q may contain only %s", label, what))}
			}
		}
	}
	return nil
}

func invalid(name string, errs field.ErrorList) error {
	return fielderrors.Invalid(v1.GroupVersion.WithKind("ClusterwideNetworkPolicy").GroupKind(), name, errs)
}
