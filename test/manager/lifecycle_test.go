package manager

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

const newImage = "firewall-ubuntu-3.0.20240201"

// waitAvailable waits until the deployment is available with all firewalls running, and returns
// the firewalls.
func waitAvailable(d *v2.FirewallDeployment, replicas int) []v2.Firewall {
	var fws []v2.Firewall
	EventuallyWithOffset(1, func(g Gomega) {
		got := getDeployment(g, d)
		g.Expect(conditionTrue(got.Status.Conditions, v2.ConditionAvailable)).To(BeTrue(), "deployment available")
		g.Expect(got.Status.ReadyReplicas).To(Equal(replicas))
		fws = firewallsIn(g, d.Namespace)
		g.Expect(fws).To(HaveLen(replicas))
		for _, fw := range fws {
			g.Expect(fw.Status.Phase).To(Equal(v2.FirewallPhaseRunning))
		}
	}).Should(Succeed())
	return fws
}

var _ = Describe("a FirewallDeployment", func() {
	It("allocates one machine per firewall, named and tagged, and becomes available", func() {
		ns := newNamespace("create")
		d := deployment(ns, "fw", 2, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		fws := waitAvailable(d, 2)

		machines := allocatedIn(ns)
		Expect(machines).To(HaveLen(2), "exactly one machine per firewall")
		names := []string{fws[0].Name, fws[1].Name}
		for _, m := range machines {
			Expect(names).To(ContainElement(m.Allocation.Hostname))
			Expect(m.Tags).To(ContainElements(v2.ManagedByTag+"="+v2.ManagedByValue, v2.NamespaceTag+"="+ns))
			Expect(m.Allocation.Project).To(Equal(metalsim.DefaultProject))
		}
		distances := []v2.FirewallDistance{fws[0].Distance, fws[1].Distance}
		Expect(distances).To(ConsistOf(v2.FirewallDistance(0), v2.FirewallDistance(1)), "active and standby")
		for _, fw := range fws {
			Expect(conditionTrue(fw.Status.Conditions, v2.ConditionProvisioned)).To(BeTrue())
			Expect(fw.Status.MachineStatus.MachineID).NotTo(BeEmpty())
			Expect(fw.Status.FirewallNetworks).NotTo(BeEmpty())
		}
	})

	It("rolls an image change without a gap: the old machine is freed only after the new one phoned home", func() {
		ns := newNamespace("roll")
		d := deployment(ns, "fw", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		old := waitAvailable(d, 1)[0]

		setImage(d, newImage)

		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Name).NotTo(Equal(old.Name))
			g.Expect(fws[0].Spec.Image).To(Equal(newImage))
			g.Expect(fws[0].Distance).To(Equal(v2.FirewallShortestDistance), "the new set moves to distance 0 after the old is gone")
			sets := setsIn(g, ns)
			g.Expect(sets).To(HaveLen(1))
			g.Expect(sets[0].Annotations[v2.RevisionAnnotation]).To(Equal("1"))
			got := getDeployment(g, d)
			g.Expect(conditionTrue(got.Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
		}).Should(Succeed())
		newFw := firewallsIn(Default, ns)[0]

		var newPhonedHome, oldFreed time.Time
		for _, e := range sim.Timeline() {
			switch {
			case e.Hostname == newFw.Name && e.Kind == metalsim.TimelinePhonedHome && newPhonedHome.IsZero():
				newPhonedHome = e.Time
			case e.Hostname == old.Name && e.Kind == metalsim.TimelineFreed:
				oldFreed = e.Time
			}
		}
		Expect(newPhonedHome).NotTo(BeZero())
		Expect(oldFreed).NotTo(BeZero())
		Expect(oldFreed).To(BeTemporally(">", newPhonedHome), "never zero ready firewalls")
		machines := allocatedIn(ns)
		Expect(machines).To(HaveLen(1))
		Expect(machines[0].Allocation.Image.ID).To(Equal(newImage))
	})

	It("recreates: frees the old machine first, then allocates", func() {
		ns := newNamespace("recreate")
		d := deployment(ns, "fw", 1, metalsim.DefaultImage, noAgent)
		d.Spec.Strategy = v2.StrategyRecreate
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		old := waitAvailable(d, 1)[0]
		setImage(d, newImage)
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Name).NotTo(Equal(old.Name))
			g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
		}).Should(Succeed())
		newFw := firewallsIn(Default, ns)[0]
		var oldFreed, newAllocated time.Time
		for _, e := range sim.Timeline() {
			if e.Hostname == old.Name && e.Kind == metalsim.TimelineFreed {
				oldFreed = e.Time
			}
			if e.Hostname == newFw.Name && e.Kind == metalsim.TimelineAllocated {
				newAllocated = e.Time
			}
		}
		Expect(newAllocated).To(BeTemporally(">=", oldFreed), "Recreate frees before it allocates")
	})

	It("applies in-place changes to running firewalls without new machines", func() {
		ns := newNamespace("inplace")
		d := deployment(ns, "fw", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		fw := waitAvailable(d, 1)[0]
		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) {
			d.Spec.Template.Spec.InternalPrefixes = []string{"10.0.0.0/8"}
			d.Spec.Template.Spec.SSHPublicKeys = []string{metalsim.FakeSSHPublicKey(7, "ops")}
		})
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Name).To(Equal(fw.Name))
			g.Expect(fws[0].Spec.InternalPrefixes).To(ConsistOf("10.0.0.0/8"))
			m, ok := sim.Machine(fw.Name)
			g.Expect(ok).To(BeTrue())
			g.Expect(m.Allocation.SSHPubKeys).To(ConsistOf(metalsim.FakeSSHPublicKey(7, "ops")), "ssh keys synced in place")
		}).Should(Succeed())
		Expect(allocatedIn(ns)).To(HaveLen(1))
	})

	It("scales up and down, keeping the most important firewall", func() {
		ns := newNamespace("scale")
		d := deployment(ns, "fw", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		first := waitAvailable(d, 1)[0]
		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { d.Spec.Replicas = 3 })
		waitAvailable(d, 3)
		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { d.Spec.Replicas = 1 })
		Eventually(func(g Gomega) {
			g.Expect(allocatedIn(ns)).To(HaveLen(1))
		}).Should(Succeed())
		fws := waitAvailable(d, 1)
		Expect(fws[0].Name).NotTo(BeEmpty())
		_ = first
	})

	It("never allocates twice when the allocate response is lost", func() {
		ns := newNamespace("lost")
		sim.Faults().LoseNextAllocateResponse(1)
		d := deployment(ns, "fw", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitAvailable(d, 1)
		Consistently(func() int { return len(allocatedIn(ns)) }, 3*time.Second, 500*time.Millisecond).Should(Equal(1))
	})

	It("keeps same-named deployments of two namespaces apart", func() {
		a, b := newNamespace("tenant-a"), newNamespace("tenant-b")
		da := deployment(a, "edge", 1, metalsim.DefaultImage, noAgent)
		db := deployment(b, "edge", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, da)).To(Succeed())
		Expect(k8sClient.Create(ctx, db)).To(Succeed())
		fa, fb := waitAvailable(da, 1)[0], waitAvailable(db, 1)[0]
		Expect(fa.Status.MachineStatus.MachineID).NotTo(Equal(fb.Status.MachineStatus.MachineID))
		Expect(allocatedIn(a)).To(HaveLen(1))
		Expect(allocatedIn(b)).To(HaveLen(1))

		Expect(k8sClient.Delete(ctx, da)).To(Succeed())
		Eventually(func(g Gomega) { g.Expect(allocatedIn(a)).To(BeEmpty()) }).Should(Succeed())
		Consistently(func() int { return len(allocatedIn(b)) }, 2*time.Second, 500*time.Millisecond).Should(Equal(1))
	})

	It("deletes in cascade and frees every machine", func() {
		ns := newNamespace("delete")
		d := deployment(ns, "fw", 2, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitAvailable(d, 2)
		Expect(k8sClient.Delete(ctx, d)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(firewallsIn(g, ns)).To(BeEmpty())
			g.Expect(setsIn(g, ns)).To(BeEmpty())
			g.Expect(allocatedIn(ns)).To(BeEmpty())
			err := k8sClient.Get(ctx, client.ObjectKeyFromObject(d), &v2.FirewallDeployment{})
			g.Expect(client.IgnoreNotFound(err)).To(Succeed())
			g.Expect(err).To(HaveOccurred())
		}).Should(Succeed())
	})

	It("makes no metal-api writes while paused, then completes the rollout", func() {
		ns := newNamespace("pause")
		d := deployment(ns, "fw", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitAvailable(d, 1)

		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) {
			d.Annotations[v2.PausedAnnotation] = "true"
			d.Spec.Template.Spec.Image = newImage
		})
		Eventually(func(g Gomega) {
			got := getDeployment(g, d)
			g.Expect(conditionTrue(got.Status.Conditions, v2.ConditionPaused)).To(BeTrue())
		}).Should(Succeed())
		writes := func() int {
			return sim.RequestCount(metal.OpFirewallAllocate) + sim.RequestCount(metal.OpMachineFree) + sim.RequestCount(metal.OpMachineUpdate)
		}
		before := writes()
		Consistently(func(g Gomega) {
			g.Expect(setsIn(g, ns)).To(HaveLen(1), "no new set while paused")
		}, 3*time.Second, 500*time.Millisecond).Should(Succeed())
		Expect(allocatedIn(ns)).To(HaveLen(1))
		Expect(writes()).To(Equal(before), "no allocate, free or update while paused")

		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { delete(d.Annotations, v2.PausedAnnotation) })
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Spec.Image).To(Equal(newImage))
			g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			got := getDeployment(g, d)
			g.Expect(meta.IsStatusConditionFalse(got.Status.Conditions, v2.ConditionPaused)).To(BeTrue())
		}).Should(Succeed())
	})

	It("waits for the agent before a firewall is ready, and honours no-controller-connection", func() {
		ns := newNamespace("agent")
		d := deployment(ns, "fw", 1, metalsim.DefaultImage, nil)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		var fw v2.Firewall
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			fw = fws[0]
			g.Expect(fw.Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			g.Expect(meta.IsStatusConditionFalse(fw.Status.Conditions, v2.ConditionConnected)).To(BeTrue())
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(conditionTrue(getDeployment(g, d).Status.Conditions, v2.ConditionAvailable)).To(BeFalse())
		}, 2*time.Second, 500*time.Millisecond).Should(Succeed())

		// The agent reports: rules applied for the current generation, distance configured.
		Eventually(func(g Gomega) { reportAgent(g, &fw) }).Should(Succeed())
		waitAvailable(d, 1)

		// An agent whose rules fail keeps the firewall not connected.
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&fw), &fw)).To(Succeed())
			failed := false
			fw.Status.ControllerStatus.RulesApplied = &failed
			fw.Status.ControllerStatus.Message = "nft: syntax error"
			fw.Status.ControllerStatus.Updated = nowTime()
			g.Expect(k8sClient.Status().Update(ctx, &fw)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&fw), &fw)).To(Succeed())
			c := meta.FindStatusCondition(fw.Status.Conditions, v2.ConditionConnected)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v2.ReasonRulesFailed))
		}).Should(Succeed())

		// no-controller-connection on the deployment is inherited down to the firewall.
		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) {
			d.Annotations[v2.NoControllerConnectionAnnotation] = "true"
		})
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&fw), &fw)).To(Succeed())
			g.Expect(fw.Annotations[v2.NoControllerConnectionAnnotation]).To(Equal("true"))
			c := meta.FindStatusCondition(fw.Status.Conditions, v2.ConditionConnected)
			g.Expect(c.Reason).To(Equal(v2.ReasonNotChecking))
		}).Should(Succeed())
	})
})
