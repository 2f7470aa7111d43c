package v2

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/userdata"
	"github.com/palisade-fw/palisade/internal/workload"
)

// DefaultInterval is the agent reconcile interval set when spec.interval is empty (upstream's
// DefaultFirewallReconcileInterval).
const DefaultInterval = "10s"

// allowedUserdataDirs are the directories userdataContents files may be written to. Everything
// else (/boot, /proc, /root, /usr/bin, ...) is refused: Ignition writes the files as root before
// the first boot, so a file there could replace parts of the OS.
var allowedUserdataDirs = []string{"/etc/", "/opt/", "/var/lib/", "/usr/local/"}

// defaultSpec fills the defaults of a FirewallSpec. It is idempotent.
func defaultSpec(spec *v2.FirewallSpec) {
	if spec.Interval == "" {
		spec.Interval = DefaultInterval
	}
}

// validateSpec checks what the CRD schema and its CEL rules cannot: durations, URL schemes,
// userdata file locations, SSH keys, and network references (warnings only).
func validateSpec(spec *v2.FirewallSpec, p *field.Path) (field.ErrorList, admission.Warnings) {
	var errs field.ErrorList
	var warnings admission.Warnings

	if spec.Interval != "" {
		d, err := time.ParseDuration(spec.Interval)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(p.Child("interval"), spec.Interval, "must be a duration such as 10s or 1m30s"))
		case d <= 0:
			errs = append(errs, field.Invalid(p.Child("interval"), spec.Interval, "must be greater than zero"))
		}
	}
	errs = append(errs, validateHTTPURL(spec.ControllerURL, p.Child("controllerURL"))...)
	errs = append(errs, validateHTTPURL(spec.NftablesExporterURL, p.Child("nftablesExporterURL"))...)
	errs = append(errs, validateUserdataContents(spec.UserdataContents, p.Child("userdataContents"))...)
	for i, key := range spec.SSHPublicKeys {
		errs = append(errs, validateAuthorizedKeys(key, p.Child("sshPublicKeys").Index(i))...)
	}

	networks := sets.New(spec.Networks...)
	networksPath := p.Child("networks").String()
	for i, rule := range spec.EgressRules {
		if rule.NetworkID != "" && !networks.Has(rule.NetworkID) {
			warnings = append(warnings, fmt.Sprintf("%s: network %q is not one of %s, so the rule has no effect",
				p.Child("egressRules").Index(i).Child("networkID"), rule.NetworkID, networksPath))
		}
	}
	for i, limit := range spec.RateLimits {
		if limit.NetworkID != "" && !networks.Has(limit.NetworkID) {
			warnings = append(warnings, fmt.Sprintf("%s: network %q is not one of %s, so the rate limit has no effect",
				p.Child("rateLimits").Index(i).Child("networkID"), limit.NetworkID, networksPath))
		}
	}
	return errs, warnings
}

// validateSpecUpdate checks the transition rules CEL does not cover: dnsPort may be set once but
// neither changed nor removed afterwards (a CEL transition rule only runs when both values exist).
func validateSpecUpdate(oldSpec, newSpec *v2.FirewallSpec, p *field.Path) field.ErrorList {
	if oldSpec.DNSPort == nil || equality.Semantic.DeepEqual(oldSpec.DNSPort, newSpec.DNSPort) {
		return nil
	}
	var value any
	if newSpec.DNSPort != nil {
		value = *newSpec.DNSPort
	}
	return field.ErrorList{field.Invalid(p.Child("dnsPort"), value, fmt.Sprintf("is immutable once set (was %d)", *oldSpec.DNSPort))}
}

func validateHTTPURL(raw string, p *field.Path) field.ErrorList {
	if raw == "" {
		return nil
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return field.ErrorList{field.Invalid(p, raw, "must be an absolute http or https URL")}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return field.ErrorList{field.Invalid(p, raw, fmt.Sprintf("must use http or https, not %q", u.Scheme))}
	}
	if u.Host == "" {
		return field.ErrorList{field.Invalid(p, raw, "must name a host")}
	}
	return nil
}

func validateUserdataContents(contents []v2.UserdataContent, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	generator := -1
	for i, c := range contents {
		pp := p.Index(i).Child("path")
		switch {
		case seen[c.Path]:
			errs = append(errs, field.Duplicate(pp, c.Path))
		case !path.IsAbs(c.Path):
			errs = append(errs, field.Invalid(pp, c.Path, "must be an absolute path"))
		case path.Clean(c.Path) != c.Path:
			errs = append(errs, field.Invalid(pp, c.Path, fmt.Sprintf("must be a clean path (%s)", path.Clean(c.Path))))
		case !AllowedUserdataPath(c.Path):
			errs = append(errs, field.Invalid(pp, c.Path, "must be a file below one of "+strings.Join(allowedUserdataDirs, ", ")))
		}
		seen[c.Path] = true

		if src, ok := userdata.SourceOf(c); ok && src.Generate {
			generatorPath := p.Index(i).Child("secretRef", "generateFirewallControllerKubeconfig")
			if c.ContentFrom != nil {
				generatorPath = p.Index(i).Child("contentFrom", "firewallControllerKubeconfigSecret")
			}
			if generator >= 0 {
				errs = append(errs, field.Forbidden(generatorPath,
					fmt.Sprintf("only one file may hold the generated agent kubeconfig, and %s already does", p.Index(generator))))
			} else {
				generator = i
			}
		}
	}
	return errs
}

// AllowedUserdataPath reports whether a userdataContents file may be written to p: a file below
// /etc/, /opt/, /var/lib/ or /usr/local/. p must be absolute and clean.
func AllowedUserdataPath(p string) bool {
	return slices.ContainsFunc(allowedUserdataDirs, func(dir string) bool {
		return strings.HasPrefix(p, dir) && len(p) > len(dir)
	})
}

// validateAuthorizedKeys accepts one or more authorized_keys lines, each of which must parse.
func validateAuthorizedKeys(keys string, p *field.Path) field.ErrorList {
	rest := []byte(keys)
	n := 0
	for len(strings.TrimSpace(string(rest))) > 0 {
		_, _, _, next, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return field.ErrorList{field.Invalid(p, truncate(keys), "must be an SSH public key in authorized_keys format (ssh-ed25519 AAAA... comment)")}
		}
		rest = next
		n++
	}
	if n == 0 {
		return field.ErrorList{field.Required(p, "must be an SSH public key in authorized_keys format")}
	}
	return nil
}

// truncate keeps long values (keys, certificates) out of error messages.
func truncate(s string) string {
	const maxLen = 40
	if len(s) <= maxLen {
		return s
	}
	return s[:maxLen] + "..."
}

// validateAnnotations checks the value types of the annotations Palisade reads.
func validateAnnotations(annotations map[string]string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, key := range []string{v2.NoControllerConnectionAnnotation, v2.PausedAnnotation} {
		if v, ok := annotations[key]; ok {
			if _, err := strconv.ParseBool(v); err != nil {
				errs = append(errs, field.Invalid(p.Key(key), v, "must be a boolean (true or false)"))
			}
		}
	}
	if v, ok := annotations[v2.WeightAnnotation]; ok {
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			errs = append(errs, field.Invalid(p.Key(v2.WeightAnnotation), v, "must be a 32-bit integer"))
		}
	}
	if v, ok := annotations[v2.WorkloadKubeconfigAnnotation]; ok {
		if _, err := workload.ParseSecretRef(v); err != nil {
			errs = append(errs, field.Invalid(p.Key(v2.WorkloadKubeconfigAnnotation), v, err.Error()))
		}
	}
	return errs
}

// validateTemplate checks the template's embedded metadata, which the API server does not
// validate (it is copied onto the created objects, where invalid labels would fail late), and
// that the selector selects what the template creates.
func validateTemplate(selector map[string]string, tmpl *v2.FirewallTemplateSpec, p *field.Path) (field.ErrorList, admission.Warnings) {
	meta := p.Child("template", "metadata")
	errs := metav1validation.ValidateLabels(tmpl.ObjectMeta.Labels, meta.Child("labels"))
	errs = append(errs, apimachineryvalidation.ValidateAnnotations(tmpl.ObjectMeta.Annotations, meta.Child("annotations"))...)
	errs = append(errs, validateAnnotations(tmpl.ObjectMeta.Annotations, meta.Child("annotations"))...)

	errs = append(errs, metav1validation.ValidateLabels(selector, p.Child("selector"))...)
	for _, k := range slices.Sorted(maps.Keys(selector)) {
		v := selector[k]
		if got, ok := tmpl.ObjectMeta.Labels[k]; !ok || got != v {
			errs = append(errs, field.Invalid(p.Child("selector").Key(k), v,
				fmt.Sprintf("must match %s (selector does not select the template's labels)", meta.Child("labels").Key(k))))
		}
	}

	specErrs, warnings := validateSpec(&tmpl.Spec, p.Child("template", "spec"))
	return append(errs, specErrs...), warnings
}

// validateSelectorUpdate keeps the selector immutable. CEL catches a change between two
// non-empty selectors; this also catches adding or removing one.
func validateSelectorUpdate(oldSelector, newSelector map[string]string, p *field.Path) field.ErrorList {
	if len(oldSelector) == 0 && len(newSelector) == 0 {
		return nil
	}
	if equality.Semantic.DeepEqual(oldSelector, newSelector) {
		return nil
	}
	return field.ErrorList{field.Invalid(p, newSelector, "selector is immutable")}
}

// isCreate reports whether the admission request in ctx is a CREATE. Without a request (unit
// tests calling Default directly) it is treated as one.
func isCreate(ctx context.Context) bool {
	req, err := admission.RequestFromContext(ctx)
	return err != nil || req.Operation == "" || req.Operation == admissionv1.Create
}
