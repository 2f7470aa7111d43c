package webhook_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/webhook"
	"github.com/palisade-fw/palisade/internal/webhook/certs"
)

const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGz7Q1o4w9m3PQvC2nM0sQ2d2xKc2Vh5b0eE1dXxYyZz operator@example"

const validFirewall = `
apiVersion: firewall.metal-stack.io/v2
kind: Firewall
metadata: {name: fw, namespace: default}
spec:
  size: n1-medium-x86
  image: firewall-ubuntu-3.0
  partition: partition-a
  project: p1
  networks: [internet, private]
`

const validSet = `
apiVersion: firewall.metal-stack.io/v2
kind: FirewallSet
metadata: {name: set, namespace: default}
spec:
  replicas: 2
  selector: {app: fw}
  template:
    metadata: {labels: {app: fw}}
    spec: {size: s, image: i, partition: pa, project: pr, networks: [net1]}
`

const validDeployment = `
apiVersion: firewall.metal-stack.io/v2
kind: FirewallDeployment
metadata: {name: deploy, namespace: default}
spec:
  replicas: 1
  template:
    metadata: {labels: {app: fw}}
    spec: {size: s, image: i, partition: pa, project: pr, networks: [net1]}
`

const validPolicy = `
apiVersion: metal-stack.io/v1
kind: ClusterwideNetworkPolicy
metadata: {name: cwnp, namespace: firewall}
spec:
  ingress:
  - from: [{cidr: 10.0.0.0/8}]
    ports: [{protocol: TCP, port: 443}]
  egress:
  - to: [{cidr: 0.0.0.0/0}]
    ports: [{protocol: UDP, port: 53}]
`

// mutated applies a YAML merge patch (RFC 7386) to a valid base object and names it.
func mutated(g Gomega, base, patch, name string) *unstructured.Unstructured {
	baseJSON, err := yaml.YAMLToJSON([]byte(base))
	g.ExpectWithOffset(1, err).NotTo(HaveOccurred())
	patchJSON, err := yaml.YAMLToJSON([]byte(patch))
	g.ExpectWithOffset(1, err).NotTo(HaveOccurred())
	merged, err := jsonpatch.MergePatch(baseJSON, patchJSON)
	g.ExpectWithOffset(1, err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{}
	g.ExpectWithOffset(1, u.UnmarshalJSON(merged)).To(Succeed())
	u.SetName(name)
	return u
}

func slug(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

func TestValidBasesAreAccepted(t *testing.T) {
	for i, base := range []string{validFirewall, validSet, validDeployment, validPolicy} {
		g := NewWithT(t)
		g.Expect(k8sClient.Create(ctx, mutated(g, base, `{}`, fmt.Sprintf("base-%d", i)))).To(Succeed())
	}
}

// Every case passes the CRD schema and its CEL rules and is refused by a webhook: the message
// says "admission webhook ... denied the request" and names the field.
func TestWebhookRejectsInvalidObjects(t *testing.T) {
	const hookFW, hookSet, hookDeploy, hookPolicy = "vfirewall-v2.firewall.metal-stack.io", "vfirewallset-v2.firewall.metal-stack.io",
		"vfirewalldeployment-v2.firewall.metal-stack.io", "vclusterwidenetworkpolicy-v1.metal-stack.io"
	cases := []struct {
		name, base, patch, hook string
		want                    []string
	}{
		// Firewall
		{"interval of zero", validFirewall, `spec: {interval: 0s}`, hookFW, []string{"spec.interval", "greater than zero"}},
		{"interval that overflows", validFirewall, `spec: {interval: 9999999999h}`, hookFW, []string{"spec.interval", "duration"}},
		{"ftp controller URL", validFirewall, `spec: {controllerURL: "ftp://images.example.com/fc"}`, hookFW, []string{"spec.controllerURL", "http or https"}},
		{"s3 exporter URL", validFirewall, `spec: {nftablesExporterURL: "s3://bucket/exporter"}`, hookFW, []string{"spec.nftablesExporterURL", "http or https"}},
		{"garbage ssh key", validFirewall, `spec: {sshPublicKeys: ["not a key"]}`, hookFW, []string{"spec.sshPublicKeys[0]", "authorized_keys"}},
		{"second ssh key truncated", validFirewall, `spec: {sshPublicKeys: ["` + sshKey + `", "ssh-ed25519 AAAA"]}`, hookFW, []string{"spec.sshPublicKeys[1]"}},
		{"no-controller-connection not a bool", validFirewall, `metadata: {annotations: {firewall.metal-stack.io/no-controller-connection: "yes please"}}`, hookFW,
			[]string{"metadata.annotations[firewall.metal-stack.io/no-controller-connection]", "boolean"}},
		{"paused not a bool", validFirewall, `metadata: {annotations: {firewall.metal-stack.io/paused: soon}}`, hookFW,
			[]string{"metadata.annotations[firewall.metal-stack.io/paused]", "boolean"}},
		{"weight not a number", validFirewall, `metadata: {annotations: {firewall.metal-stack.io/weight: heavy}}`, hookFW,
			[]string{"metadata.annotations[firewall.metal-stack.io/weight]", "32-bit integer"}},
		{"weight beyond int32", validFirewall, `metadata: {annotations: {firewall.metal-stack.io/weight: "4294967296"}}`, hookFW,
			[]string{"metadata.annotations[firewall.metal-stack.io/weight]"}},
		{"userdata file in /boot", validFirewall, `spec: {userdataContents: [{path: /boot/grub/grub.cfg, content: x}]}`, hookFW,
			[]string{"spec.userdataContents[0].path", "/etc/, /opt/, /var/lib/, /usr/local/"}},
		{"userdata file in /proc", validFirewall, `spec: {userdataContents: [{path: /etc/a, content: x}, {path: /proc/x, content: x}]}`, hookFW,
			[]string{"spec.userdataContents[1].path"}},
		{"userdata file in /root", validFirewall, `spec: {userdataContents: [{path: /root/.ssh/authorized_keys, content: x}]}`, hookFW,
			[]string{"spec.userdataContents[0].path"}},
		{"userdata file in /usr/bin", validFirewall, `spec: {userdataContents: [{path: /usr/bin/firewall-controller, content: x}]}`, hookFW,
			[]string{"spec.userdataContents[0].path"}},
		{"userdata file in /etcetera", validFirewall, `spec: {userdataContents: [{path: /etcetera/x, content: x}]}`, hookFW,
			[]string{"spec.userdataContents[0].path"}},
		{"userdata path with a dot segment", validFirewall, `spec: {userdataContents: [{path: /etc/./x, content: x}]}`, hookFW,
			[]string{"spec.userdataContents[0].path", "clean path (/etc/x)"}},
		{"userdata path ending in a dot", validFirewall, `spec: {userdataContents: [{path: /etc/x/., content: x}]}`, hookFW,
			[]string{"spec.userdataContents[0].path", "clean"}},
		{"two generated kubeconfigs", validFirewall, `spec: {userdataContents: [
			{path: /etc/a, secretRef: {name: a, generateFirewallControllerKubeconfig: true}},
			{path: /etc/b, secretRef: {name: b, generateFirewallControllerKubeconfig: true}}]}`, hookFW,
			[]string{"spec.userdataContents[1].secretRef.generateFirewallControllerKubeconfig", "spec.userdataContents[0] already does"}},
		// FirewallSet
		{"set selector value not in the labels", validSet, `spec: {selector: {app: other}}`, hookSet,
			[]string{"spec.selector[app]", "spec.template.metadata.labels[app]"}},
		{"set selector key not in the labels", validSet, `spec: {selector: {app: fw, tier: edge}}`, hookSet, []string{"spec.selector[tier]"}},
		{"set selector label value invalid", validSet, `spec: {selector: {app: "bad value!"}, template: {metadata: {labels: {app: "bad value!"}}}}`, hookSet,
			[]string{"spec.selector", "spec.template.metadata.labels"}},
		{"set template label key invalid", validSet, `spec: {template: {metadata: {labels: {"bad key!": x}}}}`, hookSet,
			[]string{"spec.template.metadata.labels"}},
		{"set template weight annotation", validSet, `spec: {template: {metadata: {annotations: {firewall.metal-stack.io/weight: "1.5"}}}}`, hookSet,
			[]string{"spec.template.metadata.annotations[firewall.metal-stack.io/weight]"}},
		{"set paused annotation", validSet, `metadata: {annotations: {firewall.metal-stack.io/paused: maybe}}`, hookSet,
			[]string{"metadata.annotations[firewall.metal-stack.io/paused]"}},
		{"set template interval of zero", validSet, `spec: {template: {spec: {interval: 0ms}}}`, hookSet, []string{"spec.template.spec.interval"}},
		{"set template file in /boot", validSet, `spec: {template: {spec: {userdataContents: [{path: /boot/x, content: x}]}}}`, hookSet,
			[]string{"spec.template.spec.userdataContents[0].path"}},
		// FirewallDeployment
		{"deployment selector not in the labels", validDeployment, `spec: {selector: {app: other}}`, hookDeploy,
			[]string{"spec.selector[app]", "spec.template.metadata.labels[app]"}},
		{"deployment ftp controller URL", validDeployment, `spec: {template: {spec: {controllerURL: "ftp://x.example.com/fc"}}}`, hookDeploy,
			[]string{"spec.template.spec.controllerURL"}},
		{"deployment garbage ssh key", validDeployment, `spec: {template: {spec: {sshPublicKeys: ["` + sshKey + `", "ssh-rsa"]}}}`, hookDeploy,
			[]string{"spec.template.spec.sshPublicKeys[1]"}},
		{"deployment no-controller-connection", validDeployment, `metadata: {annotations: {firewall.metal-stack.io/no-controller-connection: "1x"}}`, hookDeploy,
			[]string{"metadata.annotations[firewall.metal-stack.io/no-controller-connection]"}},
		{"deployment file in /var/libx", validDeployment, `spec: {template: {spec: {userdataContents: [{path: /var/libx/y, content: x}]}}}`, hookDeploy,
			[]string{"spec.template.spec.userdataContents[0].path"}},
		{"deployment two generated kubeconfigs", validDeployment, `spec: {template: {spec: {userdataContents: [
			{path: /etc/a, secretRef: {name: a, generateFirewallControllerKubeconfig: true}},
			{path: /etc/b, content: x},
			{path: /etc/c, secretRef: {name: a, key: other, generateFirewallControllerKubeconfig: true}}]}}}`, hookDeploy,
			[]string{"spec.template.spec.userdataContents[2].secretRef.generateFirewallControllerKubeconfig"}},
		{"deployment template interval of zero", validDeployment, `spec: {template: {spec: {interval: 0h0m0s}}}`, hookDeploy, []string{"spec.template.spec.interval"}},
		// ClusterwideNetworkPolicy
		{"policy except of the other family", validPolicy, `spec: {egress: [{to: [{cidr: 0.0.0.0/0, except: ["fd00::/8"]}]}]}`, hookPolicy,
			[]string{"spec.egress[0].to[0].except[0]", "same address family", "IPv4"}},
		{"policy IPv6 block with an IPv4 except", validPolicy, `spec: {ingress: [{from: [{cidr: "2001:db8::/32", except: [10.0.0.0/8]}]}]}`, hookPolicy,
			[]string{"spec.ingress[0].from[0].except[0]", "IPv6"}},
		{"policy FQDN label over 63 characters", validPolicy, `spec: {egress: [{toFQDNs: [{matchName: ` + strings.Repeat("a", 64) + `.example.com}]}]}`, hookPolicy,
			[]string{"spec.egress[0].toFQDNs[0].matchName", "longer than 63"}},
		{"policy FQDN with a leading hyphen", validPolicy, `spec: {egress: [{toFQDNs: [{matchName: -bad.example.com}]}]}`, hookPolicy,
			[]string{"spec.egress[0].toFQDNs[0].matchName", "must not start or end with '-'"}},
		{"policy FQDN pattern label ending in a hyphen", validPolicy, `spec: {egress: [{toFQDNs: [{matchName: ok.example.com}, {matchPattern: "*-.example.com"}]}]}`, hookPolicy,
			[]string{"spec.egress[0].toFQDNs[1].matchPattern"}},
		{"policy FQDN pattern label over 63 characters", validPolicy, `spec: {egress: [{toFQDNs: [{matchPattern: "*.` + strings.Repeat("b", 70) + `"}]}]}`, hookPolicy,
			[]string{"spec.egress[0].toFQDNs[0].matchPattern"}},
	}
	if len(cases) < 30 {
		t.Fatalf("want at least 30 cases, have %d", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := k8sClient.Create(ctx, mutated(g, tc.base, tc.patch, "invalid-"+slug(tc.name)))
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("admission webhook %q denied the request", tc.hook)), "refused by the webhook, not by CEL")
			for _, want := range tc.want {
				g.Expect(err.Error()).To(ContainSubstring(want))
			}
		})
	}
}

func TestDefaulting(t *testing.T) {
	g := NewWithT(t)

	deploy := mutated(g, validDeployment, `spec: {strategy: null}`, "defaulted")
	g.Expect(k8sClient.Create(ctx, deploy)).To(Succeed())
	var d v2.FirewallDeployment
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(deploy), &d)).To(Succeed())
	g.Expect(d.Spec.Strategy).To(Equal(v2.StrategyRollingUpdate))
	g.Expect(d.Spec.Selector).To(Equal(map[string]string{"app": "fw"}), "selector from the template labels")
	g.Expect(d.Spec.Template.Spec.Interval).To(Equal("10s"))

	set := mutated(g, validSet, `spec: {selector: null, template: {metadata: {labels: {app: fw, tier: edge}}}}`, "defaulted")
	g.Expect(k8sClient.Create(ctx, set)).To(Succeed())
	var s v2.FirewallSet
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), &s)).To(Succeed())
	g.Expect(s.Spec.Selector).To(Equal(map[string]string{"app": "fw", "tier": "edge"}))
	g.Expect(s.Spec.Template.Spec.Interval).To(Equal("10s"))

	fw := mutated(g, validFirewall, `{}`, "defaulted")
	g.Expect(k8sClient.Create(ctx, fw)).To(Succeed())
	var f v2.Firewall
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fw), &f)).To(Succeed())
	g.Expect(f.Spec.Interval).To(Equal("10s"))

	// Defaulting runs on update too, and leaves set values alone.
	f.Spec.Interval = ""
	g.Expect(k8sClient.Update(ctx, &f)).To(Succeed())
	g.Expect(f.Spec.Interval).To(Equal("10s"))
	f.Spec.Interval = "1m"
	g.Expect(k8sClient.Update(ctx, &f)).To(Succeed())
	g.Expect(f.Spec.Interval).To(Equal("1m"))

	// A deployment without template labels keeps an empty selector (the controller then
	// selects by its own label).
	bare := mutated(g, validDeployment, `spec: {template: {metadata: null}}`, "defaulted-bare")
	g.Expect(k8sClient.Create(ctx, bare)).To(Succeed())
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(bare), &d)).To(Succeed())
	g.Expect(d.Spec.Selector).To(BeEmpty())
	// ... and one cannot be added later: the selector is immutable.
	d.Spec.Selector = map[string]string{"app": "fw"}
	d.Spec.Template.ObjectMeta.Labels = map[string]string{"app": "fw"}
	err := k8sClient.Update(ctx, &d)
	g.Expect(err).To(MatchError(ContainSubstring("spec.selector: Invalid value")))
	g.Expect(err).To(MatchError(ContainSubstring("selector is immutable")))
}

func TestStrategyChangesOnlyWhenConverged(t *testing.T) {
	g := NewWithT(t)
	u := mutated(g, validDeployment, `spec: {replicas: 2}`, "strategy")
	g.Expect(k8sClient.Create(ctx, u)).To(Succeed())
	var d v2.FirewallDeployment
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), &d)).To(Succeed())
	d.Status.TargetReplicas, d.Status.UpdatedReadyReplicas = 2, 1
	g.Expect(k8sClient.Status().Update(ctx, &d)).To(Succeed())

	d.Spec.Strategy = v2.StrategyRecreate
	err := k8sClient.Update(ctx, &d)
	g.Expect(err).To(MatchError(ContainSubstring("spec.strategy: Forbidden: may only change when the deployment has converged (status.updatedReadyReplicas 1, status.targetReplicas 2)")))

	// Other changes are fine while the rollout runs; the template metadata stays mutable.
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), &d)).To(Succeed())
	d.Spec.Template.ObjectMeta.Labels["extra"] = "label"
	d.Spec.Template.ObjectMeta.Annotations = map[string]string{"note": "x"}
	g.Expect(k8sClient.Update(ctx, &d)).To(Succeed())

	d.Status.UpdatedReadyReplicas = 2
	g.Expect(k8sClient.Status().Update(ctx, &d)).To(Succeed())
	d.Spec.Strategy = v2.StrategyRecreate
	g.Expect(k8sClient.Update(ctx, &d)).To(Succeed())
	g.Expect(d.Spec.Strategy).To(Equal(v2.StrategyRecreate))
}

func TestUpdateRules(t *testing.T) {
	g := NewWithT(t)
	u := mutated(g, validFirewall, `spec: {dnsPort: 53}`, "dnsport")
	g.Expect(k8sClient.Create(ctx, u)).To(Succeed())
	var fw v2.Firewall
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), &fw)).To(Succeed())
	port := uint(5353)
	fw.Spec.DNSPort = &port
	g.Expect(k8sClient.Update(ctx, &fw)).To(MatchError(ContainSubstring("spec.dnsPort: Invalid value: 5353: is immutable once set (was 53)")))
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), &fw)).To(Succeed())
	fw.Spec.DNSPort = nil
	g.Expect(k8sClient.Update(ctx, &fw)).To(MatchError(ContainSubstring("spec.dnsPort")))
}

func TestWarnings(t *testing.T) {
	t.Run("upstream except outside the block is accepted unchanged", func(t *testing.T) {
		g := NewWithT(t)
		warnings.take()
		u := mutated(g, validPolicy, `spec: {egress: [{to: [{cidr: 1.1.0.0/24, except: [1.1.1.0/16]}], ports: [{protocol: TCP, port: 80}]}]}`, "upstream-except")
		g.Expect(k8sClient.Create(ctx, u)).To(Succeed())
		g.Expect(warnings.take()).To(ConsistOf(ContainSubstring("spec.egress[0].to[0].except[0]: 1.1.1.0/16 is not inside cidr 1.1.0.0/24")))
		var p v1.ClusterwideNetworkPolicy
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), &p)).To(Succeed())
		g.Expect(p.Spec.Egress[0].To[0].Except).To(Equal([]string{"1.1.1.0/16"}))
	})

	t.Run("policies outside namespace firewall are not enforced", func(t *testing.T) {
		g := NewWithT(t)
		warnings.take()
		u := mutated(g, validPolicy, `metadata: {namespace: default}`, "elsewhere")
		g.Expect(k8sClient.Create(ctx, u)).To(Succeed())
		g.Expect(warnings.take()).To(ConsistOf(ContainSubstring(`namespace "default" and is not enforced`)))
	})

	t.Run("rules for networks the firewall does not have", func(t *testing.T) {
		g := NewWithT(t)
		warnings.take()
		u := mutated(g, validDeployment, `spec: {template: {spec: {egressRules: [{networkID: internet, ips: [203.0.113.1]}], rateLimits: [{networkID: net1, rate: 10}]}}}`, "foreign-networks")
		g.Expect(k8sClient.Create(ctx, u)).To(Succeed())
		g.Expect(warnings.take()).To(ConsistOf(ContainSubstring(`spec.template.spec.egressRules[0].networkID: network "internet" is not one of spec.template.spec.networks`)))
	})
}

// Every sample (among them the seed proposal's userdataContents deployment) must keep passing
// with the webhooks in place.
func TestSamplesAreAccepted(t *testing.T) {
	g := NewWithT(t)
	root, err := testenv.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	var files []string
	for _, pattern := range []string{"firewall_v2_*.yaml", "metal-stack_v1_*.yaml"} {
		matches, err := filepath.Glob(filepath.Join(root, "config", "samples", pattern))
		g.Expect(err).NotTo(HaveOccurred())
		files = append(files, matches...)
	}
	g.Expect(len(files)).To(BeNumerically(">=", 8))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		g.Expect(err).NotTo(HaveOccurred())
		decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(raw)), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := decoder.Decode(&u.Object); err != nil {
				break
			}
			if len(u.Object) == 0 {
				continue
			}
			u.SetName("sample-" + u.GetName())
			g.Expect(k8sClient.Create(ctx, u)).To(Succeed(), "sample %s (%s %s)", filepath.Base(f), u.GetKind(), u.GetName())
		}
	}
}

func TestConfigurationNamesMatchTheManifests(t *testing.T) {
	g := NewWithT(t)
	root, err := testenv.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	raw, err := os.ReadFile(filepath.Join(root, "config", "webhook", "manifests.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(raw)).To(ContainSubstring("name: " + webhook.MutatingWebhookConfigurationName + "\n"))
	g.Expect(string(raw)).To(ContainSubstring("name: " + webhook.ValidatingWebhookConfigurationName + "\n"))
	g.Expect(strings.Count(string(raw), "failurePolicy: Fail")).To(Equal(7))
	g.Expect(strings.Count(string(raw), "sideEffects: None")).To(Equal(7))
}

// The self-signed mode against the real API server: the Secret passes its type's validation and
// the caBundle update is accepted. A configuration of its own is used, so that the suite's
// webhooks keep envtest's CA.
func TestSelfSignedCertificateAgainstTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	none := admissionregistrationv1.SideEffectClassNone
	path := "/never"
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "cert-test"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "never.example.com",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "default", Name: "none", Path: &path}},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"example.com"}, APIVersions: []string{"v1"}, Resources: []string{"nothings"}}}},
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	g.Expect(k8sClient.Create(ctx, cfg)).To(Succeed())
	dir := t.TempDir()
	opts := certs.Options{
		CertDir: dir, DNSNames: []string{"palisade-webhook.default.svc"}, Namespace: "default", SecretName: "palisade-webhook-tls",
		ValidatingWebhookConfigurations: []string{"cert-test"},
	}
	g.Expect(certs.EnsureSelfSigned(ctx, k8sClient, opts)).To(Succeed())
	ca, err := os.ReadFile(filepath.Join(dir, certs.CAName))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cfg), cfg)).To(Succeed())
	g.Expect(cfg.Webhooks[0].ClientConfig.CABundle).To(Equal(ca))
	var secret corev1.Secret
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "default", Name: "palisade-webhook-tls"}, &secret)).To(Succeed())
	g.Expect(secret.Type).To(Equal(corev1.SecretTypeTLS))
	// A second run, as after a restart, changes nothing.
	rv := secret.ResourceVersion
	g.Expect(certs.EnsureSelfSigned(ctx, k8sClient, opts)).To(Succeed())
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "default", Name: "palisade-webhook-tls"}, &secret)).To(Succeed())
	g.Expect(secret.ResourceVersion).To(Equal(rv))
}
