package helm

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// valueSets are the rendered configurations every generic assertion runs against.
var valueSets = map[string][]string{
	"defaults":                    nil,
	"cert-manager":                {"cert-manager.yaml"},
	"cert-manager-cluster-issuer": {"cert-manager-cluster-issuer.yaml"},
	"servicemonitor":              {"servicemonitor.yaml"},
	"namespace-selector":          {"namespace-selector.yaml"},
	"single-replica":              {"single-replica.yaml"},
	"upgrade":                     {"upgrade.yaml"},
	"workload-and-agent":          {"workload-and-agent.yaml"},
	"namespaces":                  {"namespaces.yaml"},
	"cluster-wide":                {"cluster-wide.yaml"},
	"gardener":                    {"gardener.yaml"},
}

func fromUnstructured[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return out
}

func TestLint(t *testing.T) {
	for _, strict := range []bool{false, true} {
		args := []string{"lint", chartDir(t)}
		if strict {
			args = append(args, "--strict")
		}
		if out, errOut, err := runHelm(t, args...); err != nil {
			t.Errorf("helm %v: %v\n%s%s", args, err, out, errOut)
		}
	}
	for name, files := range valueSets {
		args := []string{"lint", "--strict", chartDir(t)}
		for _, f := range files {
			args = append(args, "--values", filepath.Join("testdata", f))
		}
		if out, errOut, err := runHelm(t, args...); err != nil {
			t.Errorf("%s: helm lint --strict: %v\n%s%s", name, err, out, errOut)
		}
	}
}

// A misspelt value must fail instead of being ignored silently.
func TestSchemaRejectsUnknownValues(t *testing.T) {
	for file, mentions := range map[string]string{"typo.yaml": "replicas", "typo-nested.yaml": "hmacKeyy"} {
		_, errOut, err := renderRaw(t, []string{file})
		if err == nil {
			t.Errorf("%s: helm template succeeded, want a schema error", file)
			continue
		}
		if !strings.Contains(errOut, "schema") || !strings.Contains(errOut, mentions) {
			t.Errorf("%s: want a schema error naming %q, got:\n%s", file, mentions, errOut)
		}
	}
	if _, errOut, err := renderRaw(t, nil, "--set", "logLevel=verbose"); err == nil {
		t.Errorf("logLevel=verbose rendered, want an enum error")
	} else if !strings.Contains(errOut, "logLevel") {
		t.Errorf("want an error naming logLevel, got:\n%s", errOut)
	}
}

func TestManyReplicasNeedLeaderElection(t *testing.T) {
	_, errOut, err := renderRaw(t, nil, "--set", "leaderElection.enabled=false")
	if err == nil || !strings.Contains(errOut, "leaderElection.enabled") {
		t.Fatalf("2 replicas without leader election rendered (err %v):\n%s", err, errOut)
	}
}

func TestStandardLabels(t *testing.T) {
	for _, o := range render(t, nil) {
		labels := o.GetLabels()
		for _, key := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if labels[key] == "" {
				t.Errorf("%s %s: label %s missing", o.GetKind(), o.GetName(), key)
			}
		}
	}
}

// managerFlags are the flags cmd/manager defines, read from its sources so that a renamed or
// removed flag fails this test instead of crash-looping the pod.
func managerFlags(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "cmd", "manager", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sources in cmd/manager (%v)", err)
	}
	flags := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`fs\.\w+Var\([^,]+,\s*"([a-z0-9-]+)"`).FindAllStringSubmatch(string(src), -1) {
			flags[m[1]] = true
		}
	}
	if len(flags) < 10 {
		t.Fatalf("found only %d flags in cmd/manager/main.go; has the flag wiring moved?", len(flags))
	}
	// controller-runtime's zap.Options.BindFlags.
	for _, f := range []string{"zap-log-level", "zap-encoder", "zap-devel", "zap-stacktrace-level", "zap-time-encoding"} {
		flags[f] = true
	}
	return flags
}

// args returns the container's flags as a map; a flag given twice fails the test.
func args(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range c.Args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if _, dup := out[name]; dup {
			t.Errorf("flag --%s given twice", name)
		}
		out[name] = value
	}
	return out
}

func managerContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return c
		}
	}
	t.Fatalf("deployment %s has no manager container", d.Name)
	return corev1.Container{}
}

func portNumber(t *testing.T, c corev1.Container, port intstr.IntOrString) int32 {
	t.Helper()
	if port.Type == intstr.Int {
		return port.IntVal
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, port.StrVal)
	return 0
}

func TestDeployment(t *testing.T) {
	known := managerFlags(t)
	for name, files := range valueSets {
		t.Run(name, func(t *testing.T) {
			d := fromUnstructured[appsv1.Deployment](t, oneOfKind(t, render(t, files), "Deployment"))
			c := managerContainer(t, d)
			flags := args(t, c)
			for f := range flags {
				if !known[f] {
					t.Errorf("flag --%s is not defined by cmd/manager", f)
				}
			}
			for _, required := range []string{"metal-api-url", "metal-api-hmac-file", "leader-elect", "health-probe-bind-address", "metrics-bind-address", "webhook-service-name", "webhook-cert-dir"} {
				if _, ok := flags[required]; !ok {
					t.Errorf("flag --%s missing", required)
				}
			}
			replicas := *d.Spec.Replicas
			if replicas > 1 && flags["leader-elect"] != "true" {
				t.Errorf("%d replicas without --leader-elect=true", replicas)
			}
			if name == "defaults" && replicas != 2 {
				t.Errorf("default replicas %d, want 2", replicas)
			}
			assertHardened(t, d.Spec.Template.Spec.SecurityContext, c.SecurityContext)
			assertProbes(t, c, flags["health-probe-bind-address"])
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("resources incomplete: %+v", c.Resources)
			}
			assertMetalAPIFromSecret(t, d, c, flags)
			assertCertDirMounted(t, d, c, flags["webhook-cert-dir"])
		})
	}
}

func assertHardened(t *testing.T, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) {
	t.Helper()
	if c == nil {
		t.Fatal("manager container has no securityContext")
	}
	// The container's setting wins over the pod's.
	nonRoot := c.RunAsNonRoot
	if nonRoot == nil && pod != nil {
		nonRoot = pod.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		t.Error("runAsNonRoot is not true")
	}
	if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if c.Privileged != nil && *c.Privileged {
		t.Error("container is privileged")
	}
	if c.Capabilities == nil || !slices.Equal(c.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(c.Capabilities.Add) > 0 {
		t.Errorf("capabilities %+v, want drop [ALL] and nothing added", c.Capabilities)
	}
	seccomp := c.SeccompProfile
	if seccomp == nil && pod != nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %+v, want RuntimeDefault", seccomp)
	}
}

func assertProbes(t *testing.T, c corev1.Container, healthAddr string) {
	t.Helper()
	_, healthPort, _ := strings.Cut(healthAddr, ":")
	for name, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("probe for %s missing", name)
			continue
		}
		if probe.HTTPGet.Path != name {
			t.Errorf("probe path %s, want %s", probe.HTTPGet.Path, name)
		}
		if got := portNumber(t, c, probe.HTTPGet.Port); healthPort == "" || got != int32(mustAtoi(t, healthPort)) {
			t.Errorf("probe %s on port %d, manager serves health on %q", name, got, healthAddr)
		}
	}
}

func assertMetalAPIFromSecret(t *testing.T, d *appsv1.Deployment, c corev1.Container, flags map[string]string) {
	t.Helper()
	if flags["metal-api-url"] != "$(METAL_API_URL)" {
		t.Errorf("--metal-api-url=%s, want it from env METAL_API_URL", flags["metal-api-url"])
	}
	var urlFromSecret bool
	for _, e := range c.Env {
		if e.Name == "METAL_API_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			urlFromSecret = true
		}
		if e.Value != "" && strings.Contains(strings.ToLower(e.Name), "hmac") {
			t.Errorf("env %s carries a literal value; keys must come from the Secret", e.Name)
		}
	}
	if !urlFromSecret {
		t.Error("METAL_API_URL is not read from a Secret")
	}
	hmacDir := filepath.Dir(flags["metal-api-hmac-file"])
	if vol := mountedVolume(t, d, c, hmacDir); vol == nil || vol.Secret == nil {
		t.Errorf("--metal-api-hmac-file %s is not on a Secret volume", flags["metal-api-hmac-file"])
	}
}

func assertCertDirMounted(t *testing.T, d *appsv1.Deployment, c corev1.Container, certDir string) {
	t.Helper()
	vol := mountedVolume(t, d, c, certDir)
	if vol == nil {
		t.Fatalf("--webhook-cert-dir %s is not a mounted volume (the root filesystem is read-only)", certDir)
	}
	if vol.Secret == nil && vol.EmptyDir == nil {
		t.Errorf("cert dir volume %+v is neither a Secret nor an emptyDir", vol.VolumeSource)
	}
}

func mountedVolume(t *testing.T, d *appsv1.Deployment, c corev1.Container, dir string) *corev1.Volume {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if filepath.Clean(m.MountPath) != filepath.Clean(dir) {
			continue
		}
		for i := range d.Spec.Template.Spec.Volumes {
			if v := &d.Spec.Template.Spec.Volumes[i]; v.Name == m.Name {
				return v
			}
		}
	}
	return nil
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a port number", s)
	}
	return n
}

// readGenerated reads one object of the given kind from a generated manifest in config/.
func readGenerated(t *testing.T, rel, kind string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return oneOfKind(t, objs, kind)
}

func TestWebhooksMatchGenerated(t *testing.T) {
	wantMutating := fromUnstructured[admissionregistrationv1.MutatingWebhookConfiguration](t, readGenerated(t, "config/webhook/manifests.yaml", "MutatingWebhookConfiguration"))
	wantValidating := fromUnstructured[admissionregistrationv1.ValidatingWebhookConfiguration](t, readGenerated(t, "config/webhook/manifests.yaml", "ValidatingWebhookConfiguration"))
	for name, files := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, files)
			d := fromUnstructured[appsv1.Deployment](t, oneOfKind(t, objs, "Deployment"))
			c := managerContainer(t, d)
			flags := args(t, c)
			svc := webhookService(t, objs, flags["webhook-service-name"])
			if got := portNumber(t, c, svc.Spec.Ports[0].TargetPort); flags["webhook-port"] == "" || got != int32(mustAtoi(t, flags["webhook-port"])) {
				t.Errorf("webhook Service targets port %d, manager listens on --webhook-port=%s", got, flags["webhook-port"])
			}
			if !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
				t.Errorf("webhook Service selector %v does not select the manager pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
			}

			mutating := fromUnstructured[admissionregistrationv1.MutatingWebhookConfiguration](t, oneOfKind(t, objs, "MutatingWebhookConfiguration"))
			validating := fromUnstructured[admissionregistrationv1.ValidatingWebhookConfiguration](t, oneOfKind(t, objs, "ValidatingWebhookConfiguration"))
			// The manager patches caBundle of exactly the generated names.
			if mutating.Name != wantMutating.Name || validating.Name != wantValidating.Name {
				t.Errorf("webhook configurations %s and %s, the manager patches %s and %s", mutating.Name, validating.Name, wantMutating.Name, wantValidating.Name)
			}
			type entry struct {
				Name, Path   string
				Rules        []admissionregistrationv1.RuleWithOperations
				SideEffects  admissionregistrationv1.SideEffectClass
				ReviewVers   []string
				Service, Ns  string
				CABundleSize int
				Conditions   []admissionregistrationv1.MatchCondition
			}
			normalise := func(name string, cc admissionregistrationv1.WebhookClientConfig, rules []admissionregistrationv1.RuleWithOperations, se *admissionregistrationv1.SideEffectClass, vers []string) entry {
				e := entry{Name: name, Rules: rules, ReviewVers: vers, CABundleSize: len(cc.CABundle)}
				if se != nil {
					e.SideEffects = *se
				}
				if cc.Service != nil && cc.Service.Path != nil {
					e.Path, e.Service, e.Ns = *cc.Service.Path, cc.Service.Name, cc.Service.Namespace
				}
				return e
			}
			var got, want []entry
			for _, w := range mutating.Webhooks {
				e := normalise(w.Name, w.ClientConfig, w.Rules, w.SideEffects, w.AdmissionReviewVersions)
				e.Conditions = w.MatchConditions
				got = append(got, e)
			}
			for _, w := range validating.Webhooks {
				e := normalise(w.Name, w.ClientConfig, w.Rules, w.SideEffects, w.AdmissionReviewVersions)
				e.Conditions = w.MatchConditions
				got = append(got, e)
			}
			for _, w := range wantMutating.Webhooks {
				e := normalise(w.Name, w.ClientConfig, w.Rules, w.SideEffects, w.AdmissionReviewVersions)
				e.Service, e.Ns, e.Conditions = svc.Name, releaseNamespace, w.MatchConditions
				want = append(want, e)
			}
			for _, w := range wantValidating.Webhooks {
				e := normalise(w.Name, w.ClientConfig, w.Rules, w.SideEffects, w.AdmissionReviewVersions)
				e.Service, e.Ns, e.Conditions = svc.Name, releaseNamespace, w.MatchConditions
				want = append(want, e)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("webhooks differ from config/webhook/manifests.yaml (run make helm-sync)\n got: %+v\nwant: %+v", got, want)
			}
			for _, w := range mutating.Webhooks {
				if w.ClientConfig.Service != nil && w.ClientConfig.Service.Port != nil && *w.ClientConfig.Service.Port != svc.Spec.Ports[0].Port {
					t.Errorf("%s calls port %d, the Service serves %d", w.Name, *w.ClientConfig.Service.Port, svc.Spec.Ports[0].Port)
				}
			}
		})
	}
}

func webhookService(t *testing.T, objs []*unstructured.Unstructured, name string) *corev1.Service {
	t.Helper()
	for _, o := range byKind(objs, "Service") {
		if o.GetName() == name {
			svc := fromUnstructured[corev1.Service](t, o)
			if len(svc.Spec.Ports) != 1 {
				t.Fatalf("webhook Service has %d ports, want 1", len(svc.Spec.Ports))
			}
			return svc
		}
	}
	t.Fatalf("no Service named %q (--webhook-service-name)", name)
	return nil
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestCertificates(t *testing.T) {
	t.Run("self-signed", func(t *testing.T) {
		objs := render(t, nil)
		if n := len(byKind(objs, "Certificate")) + len(byKind(objs, "Issuer")); n != 0 {
			t.Errorf("rendered %d cert-manager objects without certManager.enabled", n)
		}
		for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
			if _, ok := oneOfKind(t, objs, kind).GetAnnotations()["cert-manager.io/inject-ca-from"]; ok {
				t.Errorf("%s has a cainjector annotation without cert-manager", kind)
			}
		}
		d := fromUnstructured[appsv1.Deployment](t, oneOfKind(t, objs, "Deployment"))
		c := managerContainer(t, d)
		if vol := mountedVolume(t, d, c, args(t, c)["webhook-cert-dir"]); vol == nil || vol.EmptyDir == nil {
			t.Error("self-signed mode needs a writable emptyDir as cert dir")
		}
		var podNamespace bool
		for _, e := range c.Env {
			podNamespace = podNamespace || (e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace")
		}
		if !podNamespace {
			t.Error("POD_NAMESPACE is not set from the downward API (the self-signed Secret lives there)")
		}
	})
	for name, files := range map[string][]string{"own-issuer": {"cert-manager.yaml"}, "cluster-issuer": {"cert-manager-cluster-issuer.yaml"}} {
		t.Run(name, func(t *testing.T) {
			objs := render(t, files)
			cert := oneOfKind(t, objs, "Certificate")
			secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
			dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
			issuerKind, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "kind")
			issuerName, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
			issuers := byKind(objs, "Issuer")
			switch name {
			case "own-issuer":
				if len(issuers) != 1 || issuerKind != "Issuer" || issuerName != issuers[0].GetName() {
					t.Errorf("Certificate issuer %s/%s, rendered Issuers %d", issuerKind, issuerName, len(issuers))
				}
			case "cluster-issuer":
				if len(issuers) != 0 || issuerKind != "ClusterIssuer" || issuerName != "company-ca" {
					t.Errorf("Certificate issuer %s/%s with %d own Issuers, want ClusterIssuer/company-ca only", issuerKind, issuerName, len(issuers))
				}
			}
			d := fromUnstructured[appsv1.Deployment](t, oneOfKind(t, objs, "Deployment"))
			c := managerContainer(t, d)
			flags := args(t, c)
			svc := flags["webhook-service-name"]
			wantDNS := []string{svc + "." + releaseNamespace + ".svc", svc + "." + releaseNamespace + ".svc.cluster.local"}
			if !slices.Equal(dnsNames, wantDNS) {
				t.Errorf("Certificate dnsNames %v, want %v", dnsNames, wantDNS)
			}
			for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
				if got := oneOfKind(t, objs, kind).GetAnnotations()["cert-manager.io/inject-ca-from"]; got != releaseNamespace+"/"+cert.GetName() {
					t.Errorf("%s inject-ca-from %q, want %s/%s", kind, got, releaseNamespace, cert.GetName())
				}
			}
			if vol := mountedVolume(t, d, c, flags["webhook-cert-dir"]); vol == nil || vol.Secret == nil || vol.Secret.SecretName != secretName {
				t.Errorf("--webhook-cert-dir is not the Certificate's Secret %s", secretName)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	if n := len(byKind(render(t, nil), "ServiceMonitor")); n != 0 {
		t.Errorf("default values render %d ServiceMonitors", n)
	}
	objs := render(t, []string{"servicemonitor.yaml"})
	sm := oneOfKind(t, objs, "ServiceMonitor")
	if sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v miss metrics.serviceMonitor.labels", sm.GetLabels())
	}
	selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor has %d endpoints", len(endpoints))
	}
	port, _ := endpoints[0].(map[string]any)["port"].(string)
	var matched int
	for _, o := range byKind(objs, "Service") {
		svc := fromUnstructured[corev1.Service](t, o)
		if !selects(selector, svc.Labels) {
			continue
		}
		matched++
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != port {
			t.Errorf("Service %s ports %+v, ServiceMonitor scrapes %q", svc.Name, svc.Spec.Ports, port)
		}
		d := fromUnstructured[appsv1.Deployment](t, oneOfKind(t, objs, "Deployment"))
		c := managerContainer(t, d)
		if got := portNumber(t, c, svc.Spec.Ports[0].TargetPort); ":"+strconv.Itoa(int(got)) != args(t, c)["metrics-bind-address"] {
			t.Errorf("metrics Service targets %d, manager serves metrics on %s", got, args(t, c)["metrics-bind-address"])
		}
	}
	if matched != 1 {
		t.Errorf("ServiceMonitor selects %d Services, want the metrics Service only", matched)
	}
}

func TestNamespaceSelector(t *testing.T) {
	objs := render(t, []string{"namespace-selector.yaml"})
	c := managerContainer(t, fromUnstructured[appsv1.Deployment](t, oneOfKind(t, objs, "Deployment")))
	if got := args(t, c)["namespace-selector"]; got != "palisade.metal-stack.io/enabled=true" {
		t.Errorf("--namespace-selector=%q", got)
	}
	for _, w := range fromUnstructured[admissionregistrationv1.ValidatingWebhookConfiguration](t, oneOfKind(t, objs, "ValidatingWebhookConfiguration")).Webhooks {
		if w.NamespaceSelector == nil || w.NamespaceSelector.MatchLabels["palisade.metal-stack.io/enabled"] != "true" {
			t.Errorf("webhook %s namespaceSelector %+v", w.Name, w.NamespaceSelector)
		}
	}
	defaults := managerContainer(t, fromUnstructured[appsv1.Deployment](t, oneOfKind(t, render(t, nil), "Deployment")))
	if _, ok := args(t, defaults)["namespace-selector"]; ok {
		t.Error("default values pass --namespace-selector; all namespaces expected")
	}
}

func TestPodDisruptionBudget(t *testing.T) {
	objs := render(t, nil)
	pdb := fromUnstructured[policyv1.PodDisruptionBudget](t, oneOfKind(t, objs, "PodDisruptionBudget"))
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) {
		t.Errorf("minAvailable %v, want 1", pdb.Spec.MinAvailable)
	}
	d := fromUnstructured[appsv1.Deployment](t, oneOfKind(t, objs, "Deployment"))
	if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("PDB selector %v does not select the manager pods", pdb.Spec.Selector)
	}
	if n := len(byKind(render(t, []string{"single-replica.yaml"}), "PodDisruptionBudget")); n != 0 {
		t.Errorf("one replica renders %d PodDisruptionBudgets; it would block node drains", n)
	}
}

func TestWebhooksDisabled(t *testing.T) {
	objs := render(t, nil, "--set", "webhook.enabled=false")
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Certificate"} {
		if n := len(byKind(objs, kind)); n != 0 {
			t.Errorf("webhooks disabled but %d %s rendered", n, kind)
		}
	}
	d := fromUnstructured[appsv1.Deployment](t, oneOfKind(t, objs, "Deployment"))
	c := managerContainer(t, d)
	flags := args(t, c)
	if flags["enable-webhooks"] != "false" {
		t.Errorf("--enable-webhooks=%q, want false", flags["enable-webhooks"])
	}
	for _, o := range byKind(objs, "Service") {
		if svc := fromUnstructured[corev1.Service](t, o); len(svc.Spec.Ports) > 0 && svc.Spec.Ports[0].Name == "webhook" {
			t.Errorf("webhook Service %s rendered with webhooks disabled", svc.Name)
		}
	}
	assertHardened(t, d.Spec.Template.Spec.SecurityContext, c.SecurityContext)
}

func TestServiceAccountName(t *testing.T) {
	if _, errOut, err := renderRaw(t, nil, "--set", "serviceAccount.create=false"); err == nil || !strings.Contains(errOut, "serviceAccount.name") {
		t.Errorf("serviceAccount.create=false without a name rendered (err %v): %s", err, errOut)
	}
	objs := render(t, nil, "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=existing")
	if n := len(byKind(objs, "ServiceAccount")); n != 0 {
		t.Errorf("%d ServiceAccounts rendered with serviceAccount.create=false", n)
	}
	d := fromUnstructured[appsv1.Deployment](t, oneOfKind(t, objs, "Deployment"))
	if d.Spec.Template.Spec.ServiceAccountName != "existing" {
		t.Errorf("pods run as %q, want existing", d.Spec.Template.Spec.ServiceAccountName)
	}
	for _, o := range append(byKind(objs, "ClusterRoleBinding"), byKind(objs, "RoleBinding")...) {
		if subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects"); len(subjects) != 1 || subjects[0].(map[string]any)["name"] != "existing" {
			t.Errorf("%s %s binds %v, want ServiceAccount existing", o.GetKind(), o.GetName(), subjects)
		}
	}
}

func TestWorkloadAndAgentKubeconfig(t *testing.T) {
	defaults := args(t, managerContainer(t, fromUnstructured[appsv1.Deployment](t, oneOfKind(t, render(t, nil), "Deployment"))))
	if defaults["disable-firewall-monitors"] != "false" || defaults["monitor-namespace"] != "firewall" {
		t.Errorf("defaults: --disable-firewall-monitors=%q --monitor-namespace=%q, want false and firewall", defaults["disable-firewall-monitors"], defaults["monitor-namespace"])
	}
	for _, f := range []string{"agent-api-server-url", "agent-api-server-ca-file", "workload-kubeconfig-secret", "workload-token-secret"} {
		if _, ok := defaults[f]; ok {
			t.Errorf("defaults pass --%s; the manager's own default is wanted", f)
		}
	}

	d := fromUnstructured[appsv1.Deployment](t, oneOfKind(t, render(t, []string{"workload-and-agent.yaml"}), "Deployment"))
	c := managerContainer(t, d)
	flags := args(t, c)
	want := map[string]string{
		"workload-kubeconfig-secret": "generic-token-kubeconfig/kubeconfig",
		"workload-token-secret":      "shoot-access-firewall-controller-manager",
		"agent-api-server-url":       "https://api.seed.example:443",
		"agent-token-ttl":            "12h",
	}
	for f, v := range want {
		if flags[f] != v {
			t.Errorf("--%s=%q, want %q", f, flags[f], v)
		}
	}
	caFile := flags["agent-api-server-ca-file"]
	vol := mountedVolume(t, d, c, filepath.Dir(caFile))
	if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != "seed-api-ca" {
		t.Fatalf("--agent-api-server-ca-file=%s is not on ConfigMap seed-api-ca", caFile)
	}
	if len(vol.ConfigMap.Items) != 1 || vol.ConfigMap.Items[0].Key != "bundle.pem" || vol.ConfigMap.Items[0].Path != filepath.Base(caFile) {
		t.Errorf("ConfigMap items %+v do not map key bundle.pem to %s", vol.ConfigMap.Items, filepath.Base(caFile))
	}
	if got := args(t, managerContainer(t, fromUnstructured[appsv1.Deployment](t, oneOfKind(t, render(t, nil, "--set", "firewallMonitors.enabled=false"), "Deployment")))); got["disable-firewall-monitors"] != "true" {
		t.Errorf("firewallMonitors.enabled=false passes --disable-firewall-monitors=%q", got["disable-firewall-monitors"])
	}
}
