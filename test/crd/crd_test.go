package crd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	apiv2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/testenv"
)

// seedUserdataContents is the userdataContents block of the seed proposal's FirewallDeployment,
// byte for byte (the proposal shows only the template's userdataContents; the required machine
// fields are added around it).
const seedUserdataContents = `
      userdataContents:
      - path: /etc/firewall-controller/config.yaml
        content: |
          ---
          sources:
            static: {}
          controllers:
            firewall:
              source: static
      - path: /etc/firewall-controller/seed.yaml
        secretRef:
            name: seed-kubeconfig
            generateFirewallControllerKubeconfig: true
      - path: /etc/firewall-controller/shoot.yaml
        secretRef:
            name: shoot-kubeconfig
`

const seedFirewallDeployment = `
apiVersion: firewall.metal-stack.io/v2
kind: FirewallDeployment
metadata:
  name: seed-proposal
  namespace: shoot--proj--name
spec:
  template:
    spec:
      size: n1-medium-x86
      image: firewall-ubuntu-3.0
      partition: partition-a
      project: p1
      networks: [internet]` + seedUserdataContents

func decode(doc string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	ExpectWithOffset(1, yaml.Unmarshal([]byte(doc), &u.Object)).To(Succeed())
	return u
}

var _ = Describe("samples and seed manifests", func() {
	It("accepts every sample in config/samples", func() {
		root, err := testenv.RepoRoot()
		Expect(err).NotTo(HaveOccurred())
		// Samples follow kubebuilder's <group>_<version>_<kind>.yaml naming.
		var files []string
		for _, pattern := range []string{"firewall_v2_*.yaml", "metal-stack_v1_*.yaml"} {
			matches, err := filepath.Glob(filepath.Join(root, "config", "samples", pattern))
			Expect(err).NotTo(HaveOccurred())
			files = append(files, matches...)
		}
		Expect(len(files)).To(BeNumerically(">=", 8))
		for _, f := range files {
			raw, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(raw)), 4096)
			for {
				u := &unstructured.Unstructured{}
				if err := decoder.Decode(&u.Object); err != nil {
					break
				}
				if len(u.Object) == 0 {
					continue
				}
				Expect(k8sClient.Create(ctx, u)).To(Succeed(), "sample %s (%s %s)", filepath.Base(f), u.GetKind(), u.GetName())
			}
		}
	})

	It("accepts the seed proposal's FirewallDeployment with userdataContents unchanged", func() {
		u := decode(seedFirewallDeployment)
		Expect(k8sClient.Create(ctx, u)).To(Succeed())

		var got apiv2.FirewallDeployment
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), &got)).To(Succeed())
		Expect(got.Spec.Template.Spec.UserdataContents).To(HaveLen(3))
		Expect(*got.Spec.Template.Spec.UserdataContents[0].Content).To(ContainSubstring("source: static"))
		Expect(got.Spec.Template.Spec.UserdataContents[1].SecretRef.GenerateFirewallControllerKubeconfig).To(BeTrue())
		Expect(got.Spec.Strategy).To(Equal(apiv2.StrategyRollingUpdate), "strategy is defaulted")
		Expect(got.Spec.Replicas).To(Equal(1), "replicas are defaulted")
	})
})

var _ = Describe("printer columns", func() {
	DescribeTable("keep upstream's columns and add the useful ones",
		func(crdName string, want ...string) {
			var crd apiextensionsv1.CustomResourceDefinition
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: crdName}, &crd)).To(Succeed())
			var names []string
			for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
				names = append(names, c.Name)
			}
			Expect(names).To(ContainElements(want))
		},
		Entry("firewall", "firewalls.firewall.metal-stack.io", "Phase", "Machine ID", "Last Event", "Distance", "Version", "Spec Version", "Age", "Image", "Ready"),
		Entry("set", "firewallsets.firewall.metal-stack.io", "Replicas", "Ready", "Progressing", "Unhealthy", "Distance", "Age", "Image"),
		Entry("deployment", "firewalldeployments.firewall.metal-stack.io", "Replicas", "Ready", "Progressing", "Unhealthy", "Age", "Up-to-date", "Available", "Image"),
		Entry("monitor", "firewallmonitors.firewall.metal-stack.io", "Machine ID", "Image", "Size", "Last Event", "Age"),
		Entry("cwnp", "clusterwidenetworkpolicies.metal-stack.io", "Status", "Message"),
	)
})

// tableCells GETs one object as the API server's Table (what kubectl get prints) and returns
// its cells by column name.
func tableCells(resource, namespace, name string) map[string]any {
	cs, err := kubernetes.NewForConfig(restCfg)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	raw, err := cs.CoreV1().RESTClient().Get().
		AbsPath("apis", apiv2.GroupVersion.Group, apiv2.GroupVersion.Version, "namespaces", namespace, resource, name).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(ctx)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	var table metav1.Table
	ExpectWithOffset(1, json.Unmarshal(raw, &table)).To(Succeed())
	ExpectWithOffset(1, table.Rows).To(HaveLen(1))
	cells := map[string]any{}
	for i, c := range table.ColumnDefinitions {
		cells[c.Name] = table.Rows[0].Cells[i]
	}
	return cells
}

var _ = Describe("count columns", func() {
	// A new object has no status until a controller writes one, and a controller's merge patch
	// leaves out the counts that stayed 0: without defaults, kubectl would print them blank.
	DescribeTable("print 0 before anything is ready, not blank",
		func(doc, resource string, columns ...string) {
			u := decode(doc)
			u.SetName("columns-" + resource)
			Expect(k8sClient.Create(ctx, u)).To(Succeed())
			cells := tableCells(resource, u.GetNamespace(), u.GetName())
			for _, c := range columns {
				Expect(cells).To(HaveKeyWithValue(c, BeEquivalentTo(0)), "column %s", c)
			}
		},
		Entry("firewall", validFirewallNoDistance, "firewalls", "Distance"),
		Entry("set", validSet, "firewallsets", "Ready", "Progressing", "Unhealthy", "Distance"),
		Entry("deployment", validDeployment, "firewalldeployments", "Ready", "Up-to-date", "Up-to-date-ready", "Progressing", "Unhealthy"),
	)
})

var _ = Describe("scale subresource", func() {
	It("scales a FirewallSet like a ReplicaSet", func() {
		u := decode(validSet)
		u.SetName("scalable")
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		set := &apiv2.FirewallSet{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), set)).To(Succeed())
		scale := &autoscalingv1.Scale{}
		Expect(k8sClient.SubResource("scale").Get(ctx, set, scale)).To(Succeed())
		Expect(scale.Spec.Replicas).To(BeEquivalentTo(2))
		scale.Spec.Replicas = 3
		Expect(k8sClient.SubResource("scale").Update(ctx, set, client.WithSubResourceBody(scale))).To(Succeed())
		var got apiv2.FirewallSet
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), &got)).To(Succeed())
		Expect(got.Spec.Replicas).To(Equal(3))

		scale.Spec.Replicas = 5
		err := k8sClient.SubResource("scale").Update(ctx, set, client.WithSubResourceBody(scale))
		Expect(err).To(HaveOccurred(), "the replica bound holds through the scale subresource too")
		Expect(err.Error()).To(ContainSubstring("spec.replicas"))
	})
})

const validFirewall = `
apiVersion: firewall.metal-stack.io/v2
kind: Firewall
metadata: {name: invalid-fw, namespace: default}
distance: 0
spec:
  size: n1-medium-x86
  image: firewall-ubuntu-3.0
  partition: partition-a
  project: p1
  networks: [internet]
`

// validFirewallNoDistance leaves the distance out, as a hand-written manifest may.
const validFirewallNoDistance = `
apiVersion: firewall.metal-stack.io/v2
kind: Firewall
metadata: {name: no-distance, namespace: default}
spec:
  size: n1-medium-x86
  image: firewall-ubuntu-3.0
  partition: partition-a
  project: p1
  networks: [internet]
`

const validSet = `
apiVersion: firewall.metal-stack.io/v2
kind: FirewallSet
metadata: {name: invalid-set, namespace: default}
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
metadata: {name: invalid-deploy, namespace: default}
spec:
  replicas: 1
  template:
    spec: {size: s, image: i, partition: pa, project: pr, networks: [net1]}
`

const validPolicy = `
apiVersion: metal-stack.io/v1
kind: ClusterwideNetworkPolicy
metadata: {name: invalid-cwnp, namespace: firewall}
spec:
  ingress:
  - from: [{cidr: 10.0.0.0/8}]
    ports: [{protocol: TCP, port: 443}]
  egress:
  - to: [{cidr: 0.0.0.0/0}]
    ports: [{protocol: UDP, port: 53}]
`

// mutated applies a YAML merge patch (RFC 7386) to a valid base object.
func mutated(base, patch string) *unstructured.Unstructured {
	baseJSON, err := yaml.YAMLToJSON([]byte(base))
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	patchJSON, err := yaml.YAMLToJSON([]byte(patch))
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	merged, err := jsonpatch.MergePatch(baseJSON, patchJSON)
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{}
	ExpectWithOffset(2, u.UnmarshalJSON(merged)).To(Succeed())
	return u
}

var _ = Describe("invalid objects", func() {
	It("starts from valid bases", func() {
		for _, base := range []string{validFirewall, validSet, validDeployment, validPolicy} {
			u := decode(base)
			u.SetName(u.GetName() + "-base")
			Expect(k8sClient.Create(ctx, u)).To(Succeed())
		}
	})

	DescribeTable("are rejected on create with a message naming the field",
		func(base, patch string, wantInMessage ...string) {
			err := k8sClient.Create(ctx, mutated(base, patch))
			Expect(err).To(HaveOccurred())
			for _, want := range wantInMessage {
				Expect(err.Error()).To(ContainSubstring(want))
			}
		},
		Entry("firewall without size", validFirewall, `spec: {size: null}`, "spec.size", "Required value"),
		Entry("firewall without networks", validFirewall, `spec: {networks: []}`, "spec.networks"),
		Entry("firewall without project", validFirewall, `spec: {project: null}`, "spec.project", "Required value"),
		Entry("internal prefix with a bad mask", validFirewall, `spec: {internalPrefixes: [10.0.0.0/33]}`, "spec.internalPrefixes", "must be a CIDR"),
		Entry("internal prefix that is no CIDR", validFirewall, `spec: {internalPrefixes: [intranet]}`, "spec.internalPrefixes", "must be a CIDR"),
		Entry("egress SNAT IP that is no IP", validFirewall, `spec: {egressRules: [{networkID: internet, ips: [1.2.3]}]}`, "spec.egressRules[0].ips", "must be an IP"),
		Entry("egress SNAT rule without network", validFirewall, `spec: {egressRules: [{ips: [1.2.3.4]}]}`, "spec.egressRules[0].networkID", "Required value"),
		Entry("DNS server that is a name", validFirewall, `spec: {dnsServerAddress: dns.example.com}`, "spec.dnsServerAddress", "must be an IP"),
		Entry("DNS port out of range", validFirewall, `spec: {dnsPort: 70000}`, "spec.dnsPort"),
		Entry("controller URL that is no URL", validFirewall, `spec: {controllerURL: "not a url"}`, "spec.controllerURL", "absolute URL"),
		Entry("distance above 8", validFirewall, `distance: 9`, "distance", "less than or equal to 8"),
		Entry("rate limit of zero", validFirewall, `spec: {rateLimits: [{networkID: internet, rate: 0}]}`, "spec.rateLimits[0].rate"),
		Entry("rate limit without network", validFirewall, `spec: {rateLimits: [{rate: 10}]}`, "spec.rateLimits[0].networkID", "Required value"),
		Entry("allowed ingress network that is no CIDR", validFirewall, `spec: {allowedNetworks: {ingress: [300.0.0.0/8]}}`, "spec.allowedNetworks.ingress", "must be a CIDR"),
		Entry("allowed egress network that is no CIDR", validFirewall, `spec: {allowedNetworks: {egress: ["::/200"]}}`, "spec.allowedNetworks.egress", "must be a CIDR"),
		Entry("interval that is no duration", validFirewall, `spec: {interval: 10 seconds}`, "spec.interval"),
		Entry("relative rule file", validFirewall, `spec: {ipv4RuleFile: etc/nftables/rules}`, "spec.ipv4RuleFile", "absolute path"),
		Entry("userdata and userdataContents together", validFirewall, `spec: {userdata: "{}", userdataContents: [{path: /etc/a, content: x}]}`, "spec", "mutually exclusive"),
		Entry("userdata file with content and secretRef", validFirewall, `spec: {userdataContents: [{path: /etc/a, content: x, secretRef: {name: s}}]}`, "spec.userdataContents[0]", "exactly one of content, secretRef, configMapRef, secretName and contentFrom"),
		Entry("userdata file without a source", validFirewall, `spec: {userdataContents: [{path: /etc/a}]}`, "spec.userdataContents[0]", "exactly one of content, secretRef, configMapRef, secretName and contentFrom"),
		Entry("userdata file with secretName and contentFrom", validFirewall, `spec: {userdataContents: [{path: /etc/a, secretName: s, contentFrom: {secretKeyRef: {name: s}}}]}`, "spec.userdataContents[0]", "exactly one of content, secretRef, configMapRef, secretName and contentFrom"),
		Entry("userdata contentFrom with two sources", validFirewall, `spec: {userdataContents: [{path: /etc/a, contentFrom: {secretKeyRef: {name: s}, firewallControllerKubeconfigSecret: {name: k}}}]}`, "spec.userdataContents[0].contentFrom", "exactly one of secretKeyRef, configMapKeyRef and firewallControllerKubeconfigSecret"),
		Entry("userdata file with a relative path", validFirewall, `spec: {userdataContents: [{path: etc/a, content: x}]}`, "spec.userdataContents[0].path", "absolute, clean file path"),
		Entry("userdata file escaping with ..", validFirewall, `spec: {userdataContents: [{path: /etc/../root/.ssh/authorized_keys, content: x}]}`, "spec.userdataContents[0].path", "absolute, clean file path"),
		Entry("userdata file path twice", validFirewall, `spec: {userdataContents: [{path: /etc/a, content: x}, {path: /etc/a, content: y}]}`, "spec.userdataContents[1]", "Duplicate value"),
		Entry("userdata secret with an invalid name", validFirewall, `spec: {userdataContents: [{path: /etc/a, secretRef: {name: Bad_Name}}]}`, "spec.userdataContents[0].secretRef.name"),
		Entry("userdata configmap with an invalid key", validFirewall, `spec: {userdataContents: [{path: /etc/a, configMapRef: {name: cm, key: "a/b"}}]}`, "spec.userdataContents[0].configMapRef.key"),
		Entry("initial rule with port above 65535", validFirewall, `spec: {initialRuleSet: {egress: [{ports: [70000], to: [0.0.0.0/0]}]}}`, "spec.initialRuleSet.egress[0].ports[0]"),
		Entry("initial rule with digits in the comment", validFirewall, `spec: {initialRuleSet: {egress: [{comment: rule 1, ports: [443], to: [0.0.0.0/0]}]}}`, "spec.initialRuleSet.egress[0].comment"),
		Entry("initial rule with ICMP", validFirewall, `spec: {initialRuleSet: {ingress: [{protocol: ICMP, ports: [0], from: [0.0.0.0/0]}]}}`, "spec.initialRuleSet.ingress[0].protocol", "Unsupported value"),
		Entry("initial rule with a bad source", validFirewall, `spec: {initialRuleSet: {ingress: [{ports: [22], from: [10.0.0.1/40]}]}}`, "spec.initialRuleSet.ingress[0].from", "must be a CIDR"),
		Entry("set with 5 replicas", validSet, `spec: {replicas: 5}`, "spec.replicas", "less than or equal to 4"),
		Entry("set with negative replicas", validSet, `spec: {replicas: -1}`, "spec.replicas", "greater than or equal to 0"),
		Entry("set distance above 8", validSet, `spec: {distance: 12}`, "spec.distance"),
		Entry("set template without image", validSet, `spec: {template: {spec: {image: null}}}`, "spec.template.spec.image", "Required value"),
		Entry("deployment with an unknown strategy", validDeployment, `spec: {strategy: Canary}`, "spec.strategy", "Unsupported value"),
		Entry("deployment with 5 replicas", validDeployment, `spec: {replicas: 5}`, "spec.replicas"),
		Entry("deployment selector with too many labels", validDeployment, `spec: {selector: {a0: x, a1: x, a2: x, a3: x, a4: x, a5: x, a6: x, a7: x, a8: x, a9: x, b0: x, b1: x, b2: x, b3: x, b4: x, b5: x, b6: x, b7: x, b8: x, b9: x, c0: x, c1: x, c2: x, c3: x, c4: x, c5: x, c6: x, c7: x, c8: x, c9: x, d0: x, d1: x, d2: x}}`, "spec.selector", "must have at most 32 items"),
		Entry("deployment template prefix that is no CIDR", validDeployment, `spec: {template: {spec: {internalPrefixes: [10.0.0.0]}}}`, "spec.template.spec.internalPrefixes"),
		Entry("policy CIDR without a mask", validPolicy, `spec: {egress: [{to: [{cidr: 10.0.0.0}], ports: [{port: 53}]}]}`, "spec.egress[0].to[0].cidr", "must be a CIDR"),
		Entry("policy IPv6 CIDR with a bad mask", validPolicy, `spec: {ingress: [{from: [{cidr: "2001:db8::/129"}]}]}`, "spec.ingress[0].from[0].cidr", "must be a CIDR"),
		Entry("policy except that is no CIDR", validPolicy, `spec: {ingress: [{from: [{cidr: 10.0.0.0/8, except: [lab]}]}]}`, "spec.ingress[0].from[0].except", "must be a CIDR"),
		Entry("policy port 0", validPolicy, `spec: {ingress: [{ports: [{port: 0}]}]}`, "spec.ingress[0].ports[0].port", "greater than or equal to 1"),
		Entry("policy port above 65535", validPolicy, `spec: {egress: [{to: [{cidr: 0.0.0.0/0}], ports: [{port: 65536}]}]}`, "spec.egress[0].ports[0].port"),
		Entry("policy endPort below port", validPolicy, `spec: {ingress: [{ports: [{port: 8080, endPort: 8000}]}]}`, "spec.ingress[0].ports[0]", "endPort must be set together with port and be >= port"),
		Entry("policy endPort without port", validPolicy, `spec: {ingress: [{ports: [{endPort: 8000}]}]}`, "spec.ingress[0].ports[0]", "endPort must be set together with port"),
		Entry("policy with SCTP", validPolicy, `spec: {egress: [{to: [{cidr: 0.0.0.0/0}], ports: [{protocol: SCTP, port: 9}]}]}`, "spec.egress[0].ports[0].protocol", "Unsupported value"),
		Entry("policy egress with to and toFQDNs", validPolicy, `spec: {egress: [{to: [{cidr: 0.0.0.0/0}], toFQDNs: [{matchName: example.com}]}]}`, "spec.egress[0]", "mutually exclusive"),
		Entry("policy FQDN name with a space", validPolicy, `spec: {egress: [{toFQDNs: [{matchName: "bad name"}]}]}`, "spec.egress[0].toFQDNs[0].matchName"),
		Entry("policy FQDN selector that is empty", validPolicy, `spec: {egress: [{toFQDNs: [{}]}]}`, "spec.egress[0].toFQDNs[0]", "one of matchName and matchPattern"),
	)

	DescribeTable("are rejected on update when an immutable field changes",
		func(base, patch string, wantInMessage ...string) {
			u := decode(base)
			u.SetName(u.GetName() + "-immutable-" + strings.ToLower(strings.ReplaceAll(CurrentSpecReport().LeafNodeText, " ", "-")))
			Expect(k8sClient.Create(ctx, u)).To(Succeed())
			changed := mutated(base, patch)
			changed.SetName(u.GetName())
			changed.SetResourceVersion(u.GetResourceVersion())
			err := k8sClient.Update(ctx, changed)
			Expect(err).To(HaveOccurred())
			for _, want := range wantInMessage {
				Expect(err.Error()).To(ContainSubstring(want))
			}
		},
		Entry("project", validFirewall, `spec: {project: p2}`, "spec.project", "project is immutable"),
		Entry("partition", validFirewall, `spec: {partition: partition-b}`, "spec.partition", "partition is immutable"),
		Entry("set selector", validSet, `spec: {selector: {app: fw, extra: x}, template: {metadata: {labels: {app: fw, extra: x}}}}`, "spec.selector", "selector is immutable"),
		Entry("deployment template project", validDeployment, `spec: {template: {spec: {project: other}}}`, "spec.template.spec.project", "project is immutable"),
	)
})
