package clusterctl

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
)

// gardenerDeployment is the FirewallDeployment GEPM writes (integration notes B3), reduced to
// the fields the migration depends on.
const gardenerDeployment = `
apiVersion: firewall.metal-stack.io/v2
kind: FirewallDeployment
metadata:
  name: shoot-firewall
  namespace: shoot--proj--migrate
  labels:
    gardener-shoot-namespace: shoot--proj--migrate
  finalizers:
  - firewall.metal-stack.io/firewall-controller-manager
spec:
  replicas: 1
  autoUpdate:
    machineImage: false
  selector:
    cluster.metal-stack.io/id: 0b7f3d2e-5c4a-4e1b-9d8f-7a6b5c4d3e2f
  template:
    metadata:
      labels:
        cluster.metal-stack.io/id: 0b7f3d2e-5c4a-4e1b-9d8f-7a6b5c4d3e2f
    spec:
      partition: ` + metalsim.DefaultPartition + `
      project: ` + metalsim.DefaultProject + `
      size: ` + metalsim.DefaultSize + `
      image: ` + metalsim.DefaultImage + `
      networks: [` + metalsim.DefaultExternalNetwork + `, ` + metalsim.DefaultPrivateNetwork + `]
`

// Gardener's control-plane migration as GEPM does it (integration notes B10), with the source
// paused first: the Firewalls are copied to the target seed without owner references or status
// and the deployment is created again, then the source objects are shallow-deleted (finalizers
// removed, deleted with orphan propagation). The target adopts the running machine; no machine
// is allocated or freed.
func TestGardenerMigrationKeepsTheMachine(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(90 * time.Second)
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	ctx := context.Background()

	source, err := harness.Start(harness.Options{Webhooks: true, Logger: harness.TestLogger()})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = source.Stop() })
	target := harness.New(harness.Options{Webhooks: true, Logger: harness.TestLogger()})
	g.Expect(target.StartAPIServer()).To(Succeed())
	target.Sim, target.SimURL, target.Metal = source.Sim, source.SimURL, source.Metal
	g.Expect(target.StartManager()).To(Succeed())
	t.Cleanup(func() { _ = target.Stop() })

	const ns = "shoot--proj--migrate"
	for _, s := range []*harness.Stack{source, target} {
		g.Expect(s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	g.Expect(source.Client.Create(ctx, decodeObject(g, gardenerDeployment))).To(Succeed())
	var machineID, fwName, sourceSet string
	g.Eventually(func(g Gomega) {
		fws := firewalls(g, source.Client, ns)
		g.Expect(fws).To(HaveLen(1))
		g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
		machineID, fwName, sourceSet = fws[0].Status.MachineStatus.MachineID, fws[0].Name, metav1.GetControllerOf(&fws[0]).Name
		m, ok := source.Sim.Machine(machineID)
		g.Expect(ok).To(BeTrue())
		g.Expect(m.Tags).To(ContainElement(v2.SetTag + "=" + sourceSet))
	}).Should(Succeed())
	deployKey := client.ObjectKey{Namespace: ns, Name: "shoot-firewall"}

	By(t, "pause the source, then copy the Firewalls as GEPM's state holds them and create the deployment again")
	setPaused(g, source.Client, deployKey, true)
	g.Eventually(func(g Gomega) {
		fws := firewalls(g, source.Client, ns)
		g.Expect(fws).To(HaveLen(1))
		g.Expect(fws[0].Status.Conditions).To(ContainElement(HaveField("Type", v2.ConditionPaused)))
	}).Should(Succeed())
	source.Sim.ResetRequests()
	for _, fw := range firewalls(g, source.Client, ns) {
		state := fw.DeepCopy()
		state.ResourceVersion, state.UID, state.OwnerReferences, state.ManagedFields = "", "", nil, nil
		state.CreationTimestamp = metav1.Time{}
		state.Status = v2.FirewallStatus{}
		g.Expect(target.Client.Create(ctx, state)).To(Succeed())
	}
	g.Expect(target.Client.Create(ctx, decodeObject(g, gardenerDeployment))).To(Succeed())

	By(t, "shallow-delete on the source: finalizers removed, deleted with orphan propagation")
	g.Eventually(func() error { return harness.ShallowDelete(ctx, source.Client, ns) }).Should(Succeed())
	g.Eventually(func(g Gomega) {
		var list v2.FirewallList
		g.Expect(source.Client.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		// A finalizer the running source manager puts back is released without freeing (paused).
		g.Expect(list.Items).To(BeEmpty())
	}).Should(Succeed())

	By(t, "the target adopts the same machine; nothing is allocated or freed")
	g.Eventually(func(g Gomega) {
		fws := firewalls(g, target.Client, ns)
		g.Expect(fws).To(HaveLen(1))
		g.Expect(fws[0].Name).To(Equal(fwName))
		g.Expect(metav1.GetControllerOf(&fws[0])).NotTo(BeNil(), "adopted by the target's set")
		g.Expect(fws[0].Status.MachineStatus).NotTo(BeNil())
		g.Expect(fws[0].Status.MachineStatus.MachineID).To(Equal(machineID))
		g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(firewalls(g, target.Client, ns)).To(HaveLen(1))
		g.Expect(source.Sim.RequestCount(metal.OpFirewallAllocate)).To(BeZero())
		g.Expect(source.Sim.RequestCount(metal.OpMachineFree)).To(BeZero())
	}, 5*time.Second).Should(Succeed())
	allocated := 0
	for _, m := range source.Sim.Machines() {
		if m.Allocation != nil {
			allocated++
			g.Expect(m.ID).To(Equal(machineID))
		}
	}
	g.Expect(allocated).To(Equal(1), "no extra machine")

	By(t, "the machine's set tag names the target's set that adopted it (issue 20)")
	g.Eventually(func(g Gomega) {
		fws := firewalls(g, target.Client, ns)
		g.Expect(fws).To(HaveLen(1))
		targetSet := metav1.GetControllerOf(&fws[0]).Name
		g.Expect(targetSet).NotTo(Equal(sourceSet))
		m, ok := source.Sim.Machine(machineID)
		g.Expect(ok).To(BeTrue())
		g.Expect(m.Tags).To(ContainElement(v2.SetTag + "=" + targetSet))
		g.Expect(m.Tags).NotTo(ContainElement(v2.SetTag + "=" + sourceSet))
	}).Should(Succeed())
}

func decodeObject(g Gomega, manifest string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(manifest), &u.Object)).To(Succeed())
	return u
}
