package userdata

import (
	"encoding/json"
	"testing"
	"time"

	ignition "github.com/coreos/ignition/v2/config/v3_4/types"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/firewall"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

// gepmDeployment is the FirewallDeployment GEPM writes (section B3 of the integration notes),
// with the shoot namespace, the shoot UID and GEPM's finalizer; no userdata.
const gepmDeployment = `
apiVersion: firewall.metal-stack.io/v2
kind: FirewallDeployment
metadata:
  name: shoot-firewall
  annotations:
    firewall.metal-stack.io/reconcile: "true"
  labels:
    gardener-shoot-namespace: NAMESPACE
  finalizers:
  - firewall.metal-stack.io/firewall-controller-manager
spec:
  replicas: 1
  autoUpdate:
    machineImage: false
  selector:
    cluster.metal-stack.io/id: 5e0c2b9a-1d2e-4f60-9a7b-3c4d5e6f7a8b
  template:
    metadata:
      labels:
        cluster.metal-stack.io/id: 5e0c2b9a-1d2e-4f60-9a7b-3c4d5e6f7a8b
    spec:
      partition: partition-a
      project: 00000000-0000-0000-0000-000000000001
      size: n1-medium-x86
      image: firewall-ubuntu-3.0
      networks: [internet, tenant-network-1]
      internalPrefixes: [10.0.0.0/8]
      rateLimits:
      - networkID: internet
        rate: 100
      egressRules:
      - networkID: internet
        ips: [203.0.113.10]
      controllerVersion: v2.5.0
      controllerURL: https://images.metal-stack.io/firewall-controller/v2.5.0/firewall-controller
      nftablesExporterVersion: v0.2.0
      nftablesExporterURL: https://images.metal-stack.io/nftables-exporter/v0.2.0/nftables-exporter
      logAcceptedConnections: false
      sshPublicKeys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmDzCHhKa6r3e0Ji4JgHk3QK5sZP0H2vb3V8vZfQ4rB gardener
`

const shootUID = "5e0c2b9a-1d2e-4f60-9a7b-3c4d5e6f7a8b"

// gardenerShootAccess is what -shoot-kubeconfig-secret-name, -shoot-token-secret-name and
// -shoot-api-url configure.
var gardenerShootAccess = firewall.ShootAccessConfig{
	GenericKubeconfigSecret: "generic-token-kubeconfig/kubeconfig",
	TokenSecret:             "shoot-access-firewall-controller-manager",
	APIServerURL:            "https://api.shoot.example",
}

// GEPM's FirewallDeployment, applied unchanged, gets a firewall whose userdata is in the upstream
// firewall-controller's layout with a working seed kubeconfig, tagged with the shoot's UID; GEPM's
// own updates (which cannot carry userdataContents) do not roll it; deleting it completes
// although it carries GEPM's finalizer, and frees the machine.
func TestGardenerDeploymentEndToEnd(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	g.SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	c := stack.Client
	ns := newNamespace(g, "shoot--proj")

	obj := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(gepmDeployment), &obj.Object)).To(Succeed())
	obj.SetNamespace(ns)
	obj.SetLabels(map[string]string{"gardener-shoot-namespace": ns})
	g.Expect(c.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())
	deploy := &v2.FirewallDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shoot-firewall"}}

	By(t, "the firewall is allocated with the upstream layout and tagged with the shoot UID")
	g.Eventually(func() int { return len(allocatedIn(ns)) }).Should(Equal(1))
	machine := allocatedIn(ns)[0]
	g.Expect(machine.Tags).To(ContainElement(v2.ClusterIDTag + "=" + shootUID))
	var cfg ignition.Config
	g.Expect(json.Unmarshal([]byte(machine.Allocation.UserData), &cfg)).To(Succeed())
	var units []string
	for _, u := range cfg.Systemd.Units {
		if u.Enabled != nil && *u.Enabled {
			units = append(units, u.Name)
		}
	}
	g.Expect(units).To(ConsistOf("firewall-controller.service"))
	files := ignitionFiles(g, machine.Allocation.UserData)
	seedKubeconfig := files["/etc/firewall-controller/.seed-kubeconfig"]
	g.Expect(seedKubeconfig).NotTo(BeEmpty())

	By(t, "the seed kubeconfig works as the upstream firewall-controller uses it")
	kc, err := clientcmd.Load([]byte(seedKubeconfig))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(kc.CurrentContext).To(Equal(ns), "the seed namespace is the current context's name")
	agent := agentClient(g, []byte(seedKubeconfig))
	var fws v2.FirewallList
	g.Expect(agent.List(ctx, &fws, client.InNamespace(ns))).To(Succeed(), "it lists the Firewalls of its namespace")
	g.Expect(fws.Items).To(HaveLen(1))
	g.Expect(fws.Items[0].Name).To(Equal(machine.Allocation.Hostname))

	By(t, "the shoot kubeconfig works too (single-cluster mode: the shoot is this cluster)")
	shootKubeconfig := files["/etc/firewall-controller/.kubeconfig"]
	g.Expect(shootKubeconfig).NotTo(BeEmpty())
	shootCfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(shootKubeconfig))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(shootCfg.Host).To(Equal("https://api.shoot.example"), "the server is -shoot-api-url")
	shootCfg.Host = stack.Config.Host // what api.shoot.example stands for here
	shootClient, err := client.New(shootCfg, client.Options{Scheme: stack.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	var services corev1.ServiceList
	g.Expect(shootClient.List(ctx, &services)).To(Succeed(), "it reads the shoot's Services")

	By(t, "status.shootAccess names the shoot's Secrets, which the seed kubeconfig may read")
	for _, name := range []string{"generic-token-kubeconfig", "shoot-access-firewall-controller-manager"} {
		g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			StringData: map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\n"}})).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		var fw v2.Firewall
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(&fws.Items[0]), &fw)).To(Succeed())
		g.Expect(fw.Status.ShootAccess).To(Equal(&v2.ShootAccess{
			GenericKubeconfigSecretName: "generic-token-kubeconfig", TokenSecretName: "shoot-access-firewall-controller-manager",
			Namespace: ns, APIServerURL: "https://api.shoot.example",
		}))
		for _, name := range []string{"generic-token-kubeconfig", "shoot-access-firewall-controller-manager"} {
			g.Expect(agent.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{})).To(Succeed(), name)
		}
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		cond := meta.FindStatusCondition(get(g, deploy).Status.Conditions, v2.ConditionUserdataReady)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Reason).To(Equal(v2.ReasonUserdataRendered))
	}).Should(Succeed())

	By(t, "GEPM's CreateOrUpdate sends the deployment without userdataContents: nothing rolls")
	g.Eventually(func() error {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(v2.GroupVersion.WithKind("FirewallDeployment"))
		if err := c.Get(ctx, client.ObjectKeyFromObject(deploy), u); err != nil {
			return err
		}
		unstructured.RemoveNestedField(u.Object, "spec", "template", "spec", "userdataContents")
		u.SetAnnotations(map[string]string{v2.ReconcileAnnotation: "true"})
		return c.Update(ctx, u)
	}).Should(Succeed())
	g.Expect(get(g, deploy).Spec.Template.Spec.UserdataContents).To(HaveLen(2), "put back by the webhook")
	var sets v2.FirewallSetList
	g.Consistently(func(g Gomega) {
		g.Expect(c.List(ctx, &sets, client.InNamespace(ns))).To(Succeed())
		g.Expect(sets.Items).To(HaveLen(1))
		g.Expect(allocatedIn(ns)).To(HaveLen(1))
	}, 3*time.Second).Should(Succeed())

	By(t, "deleting the deployment completes despite GEPM's finalizer and frees the machine")
	g.Expect(c.Delete(ctx, get(g, deploy))).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(deploy), &v2.FirewallDeployment{}))
	}).Should(BeTrue())
	g.Eventually(func() []metalsim.MachineSnapshot { return allocatedIn(ns) }).Should(BeEmpty())
	m, ok := stack.Sim.Machine(machine.ID)
	g.Expect(ok).To(BeTrue())
	g.Expect(m.Allocation).To(BeNil())
}

// A deployment without any userdata says so: UserdataReady=True with reason Empty, not "rendered".
func TestUserdataReadySaysEmpty(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	ns := newNamespace(g, "empty")
	seedExample(g, ns, func(spec map[string]any) { delete(spec, "userdataContents") })
	g.Eventually(func(g Gomega) {
		var list v2.FirewallDeploymentList
		g.Expect(stack.Client.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1))
		cond := meta.FindStatusCondition(list.Items[0].Status.Conditions, v2.ConditionUserdataReady)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(cond.Reason).To(Equal(v2.ReasonUserdataEmpty))
	}).Should(Succeed())
	g.Eventually(func() int { return len(allocatedIn(ns)) }).Should(Equal(1))
	g.Expect(allocatedIn(ns)[0].Allocation.UserData).To(BeEmpty())
}
