package userdata

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/testenv"
)

// The seed's Cluster API example (seed 001), in the form CAPMS passes it on (secretName) and in
// the form CAPMS compiles against (contentFrom): applied with strict field validation, the
// deployment waits for the kubeconfig Secret Cluster API writes later, then the firewall is
// allocated with the agent config and the workload kubeconfig in its userdata.
func TestClusterAPIExampleEndToEnd(t *testing.T) {
	rendered := map[string]map[string]string{}
	for _, tc := range []struct {
		sample, cluster, configSecret string
	}{
		{"firewall_v2_firewalldeployment_capi.yaml", "capi-seed", "capi-seed-firewall-controller-config"},
		{"firewall_v2_firewalldeployment_capms.yaml", "capms", "capms-firewall-controller-config"},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			g := NewWithT(t)
			g.SetDefaultEventuallyTimeout(60 * time.Second)
			g.SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
			c := stack.Client
			ns := newNamespace(g, tc.cluster)

			var deploy *v2.FirewallDeployment
			for _, obj := range sampleObjects(g, tc.sample) {
				obj.SetNamespace(ns)
				g.Expect(c.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed(), "%s %s", obj.GetKind(), obj.GetName())
				if obj.GetKind() == "FirewallDeployment" {
					deploy = &v2.FirewallDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: obj.GetName()}}
				}
			}
			g.Expect(deploy).NotTo(BeNil())

			By(t, "before Cluster API writes the kubeconfig, the deployment waits and nothing is allocated")
			kubeconfigName := tc.cluster + "-kubeconfig"
			g.Eventually(func(g Gomega) {
				cond := meta.FindStatusCondition(get(g, deploy).Status.Conditions, v2.ConditionUserdataReady)
				g.Expect(cond).NotTo(BeNil())
				g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(cond.Reason).To(Equal(v2.ReasonSecretMissing))
				g.Expect(cond.Message).To(ContainSubstring(kubeconfigName))
			}).Should(Succeed())
			g.Expect(allocatedIn(ns)).To(BeEmpty())

			By(t, "Cluster API writes the kubeconfig Secret (key value): the firewall is allocated with both files")
			kubeconfig := "apiVersion: v1\nkind: Config\n# " + tc.cluster + " workload\n"
			g.Expect(c.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: kubeconfigName, Namespace: ns,
					Labels: map[string]string{"cluster.x-k8s.io/cluster-name": tc.cluster}},
				Type: "cluster.x-k8s.io/secret",
				Data: map[string][]byte{"value": []byte(kubeconfig)},
			})).To(Succeed())
			g.Eventually(func() int { return len(allocatedIn(ns)) }).Should(Equal(1))

			var config corev1.Secret
			g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: tc.configSecret}, &config)).To(Succeed())
			files := ignitionFiles(g, allocatedIn(ns)[0].Allocation.UserData)
			g.Expect(files).To(HaveKeyWithValue("/etc/firewall-controller/config.yaml", string(config.Data["controllerConfig"])))
			g.Expect(files).To(HaveKeyWithValue("/etc/firewall-controller/workload.yaml", kubeconfig))
			g.Eventually(func(g Gomega) {
				g.Expect(meta.IsStatusConditionTrue(get(g, deploy).Status.Conditions, v2.ConditionUserdataReady)).To(BeTrue())
			}).Should(Succeed())
			rendered[tc.sample] = files
		})
	}
	// The CAPMS form also asks for a generated agent kubeconfig; the two shared files are equal in form.
	capi, capms := rendered["firewall_v2_firewalldeployment_capi.yaml"], rendered["firewall_v2_firewalldeployment_capms.yaml"]
	if capms != nil && capms["/etc/firewall-controller/seed.yaml"] == "" {
		t.Error("the contentFrom form's firewallControllerKubeconfigSecret rendered no kubeconfig")
	}
	if capi != nil && len(capi) != 2 {
		t.Errorf("the secretName form rendered %d files, want 2", len(capi))
	}
}

// sampleObjects decodes every document of config/samples/<name>.
func sampleObjects(g Gomega, name string) []*unstructured.Unstructured {
	root, err := testenv.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	raw, err := os.ReadFile(filepath.Join(root, "config", "samples", name))
	g.Expect(err).NotTo(HaveOccurred())
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := decoder.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
	return out
}

// The initial rule set sample has a rule with IPv4 and IPv6 destinations, as the CAPMS template
// writes it; metal-api refuses such a rule, so the manager sends one rule per address family and
// the firewall is allocated.
func TestInitialRuleSetMixedFamiliesIsAllocated(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	c := stack.Client
	ns := newNamespace(g, "ruleset")
	for name, data := range map[string]map[string][]byte{
		"capi-cluster-firewall-controller-config": {"controllerConfig": []byte("sources: {}\n")},
		"capi-cluster-kubeconfig":                 {"value": []byte("apiVersion: v1\nkind: Config\n")},
	} {
		g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: data})).To(Succeed())
	}
	objs := sampleObjects(g, "firewall_v2_firewalldeployment_initialruleset.yaml")
	g.Expect(objs).To(HaveLen(1))
	objs[0].SetNamespace(ns)
	g.Expect(c.Create(ctx, objs[0], client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())

	g.Eventually(func() int { return len(allocatedIn(ns)) }).Should(Equal(1))
	rules := allocatedIn(ns)[0].Allocation.FirewallRules
	g.Expect(rules).NotTo(BeNil())
	var dns [][]string
	for _, r := range rules.Egress {
		if r.Comment == "allow dns" {
			dns = append(dns, r.To)
		}
	}
	g.Expect(dns).To(Equal([][]string{{"0.0.0.0/0"}, {"::/0"}}), "one rule per address family")
	g.Expect(rules.Egress).To(HaveLen(3))
	g.Expect(rules.Ingress).To(HaveLen(1))
}
