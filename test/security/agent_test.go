package security

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv"
)

func deployment(name string, contents ...v2.UserdataContent) *v2.FirewallDeployment {
	return &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantNamespace},
		Spec: v2.FirewallDeploymentSpec{
			Strategy: v2.StrategyRollingUpdate,
			Replicas: 1,
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: v2.FirewallSpec{
					Size: metalsim.DefaultSize, Image: metalsim.DefaultImage, Partition: metalsim.DefaultPartition,
					Project:          metalsim.DefaultProject,
					Networks:         []string{metalsim.DefaultExternalNetwork, metalsim.DefaultPrivateNetwork},
					UserdataContents: contents,
				},
			},
		},
	}
}

// firewallsOf waits for the deployment's firewalls to carry a machine and returns them.
func firewallsOf(g Gomega, deploy *v2.FirewallDeployment, n int) []v2.Firewall {
	var fws v2.FirewallList
	g.Eventually(func(g Gomega) {
		g.Expect(admin.List(ctx, &fws, client.InNamespace(deploy.Namespace), client.MatchingLabels(deploy.Spec.Template.ObjectMeta.Labels))).To(Succeed())
		g.Expect(fws.Items).To(HaveLen(n))
		for _, fw := range fws.Items {
			g.Expect(fw.Status.MachineStatus).NotTo(BeNil(), "firewall %s has no machine yet", fw.Name)
		}
	}).Should(Succeed())
	return fws.Items
}

// The manager does its whole job with the chart's rights: it provisions an agent identity and
// kubeconfig, and that kubeconfig reaches the agent's own firewall only.
func TestAgentKubeconfigCannotTouchASiblingFirewall(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(90 * time.Second)
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)

	edge := deployment("edge", v2.UserdataContent{Path: "/etc/firewall-controller/seed.yaml",
		SecretRef: &v2.UserdataSecretRef{Name: "edge-seed-kubeconfig", GenerateFirewallControllerKubeconfig: true}})
	sibling := deployment("sibling")
	g.Expect(admin.Create(ctx, edge)).To(Succeed())
	g.Expect(admin.Create(ctx, sibling)).To(Succeed())
	own := firewallsOf(g, edge, 1)[0]
	other := firewallsOf(g, sibling, 1)[0]

	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(edge), edge)).To(Succeed())
		cond := meta.FindStatusCondition(edge.Status.Conditions, v2.ConditionRBACProvisioned)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), "%s", cond.Message)
	}).Should(Succeed(), "the manager provisions the agent identity as its own ServiceAccount")
	secret := &corev1.Secret{}
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: tenantNamespace, Name: "edge-seed-kubeconfig"}, secret)).To(Succeed())
	cfg, err := clientcmd.RESTConfigFromKubeConfig(secret.Data[v2.DefaultUserdataKey])
	g.Expect(err).NotTo(HaveOccurred())
	agent, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	mine := &v2.Firewall{}
	g.Eventually(func() error { return agent.Get(ctx, client.ObjectKeyFromObject(&own), mine) }).Should(Succeed(), "the agent reads its own firewall")
	patch := client.MergeFrom(mine.DeepCopy())
	mine.Status.ControllerStatus = &v2.ControllerConnection{ActualVersion: "security-test", Updated: metav1.Now()}
	g.Expect(agent.Status().Patch(ctx, mine, patch)).To(Succeed(), "the agent reports into its own firewall")

	theirs := other.DeepCopy()
	expectRBACDenied(g, agent.Get(ctx, client.ObjectKeyFromObject(theirs), &v2.Firewall{}), "get the sibling firewall")
	theirs.Status.ControllerStatus = &v2.ControllerConnection{ActualVersion: "forged", Updated: metav1.Now()}
	expectRBACDenied(g, agent.Status().Update(ctx, theirs), "update the sibling firewall's status")
	expectRBACDenied(g, agent.Status().Patch(ctx, theirs, client.RawPatch("application/merge-patch+json", []byte(`{"status":{"controllerStatus":{"actualVersion":"forged"}}}`))), "patch the sibling firewall's status")
	expectRBACDenied(g, agent.List(ctx, &v2.FirewallList{}, client.InNamespace(tenantNamespace)), "list every firewall")
	expectRBACDenied(g, agent.List(ctx, &v2.FirewallSetList{}, client.InNamespace(tenantNamespace)), "list FirewallSets")
	expectRBACDenied(g, agent.Update(ctx, mine), "change its own firewall's spec")
	expectRBACDenied(g, agent.Get(ctx, client.ObjectKey{Namespace: tenantNamespace, Name: "tenant-database"}, &corev1.Secret{}), "read an unreferenced Secret")

	g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(theirs), theirs)).To(Succeed())
	g.Expect(theirs.Status.ControllerStatus).To(BeNil(), "the sibling firewall's status is untouched")
}
