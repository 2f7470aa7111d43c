package manager

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

func pausedCondition(conds []metav1.Condition) *metav1.Condition {
	return meta.FindStatusCondition(conds, v2.ConditionPaused)
}

func machineFreed(name string) bool {
	return countEvents(timeline(name), metalsim.TimelineFreed)[name] > 0
}

var _ = Describe("pause", func() {
	It("keeps a paused firewall's machine when its set scales it away, and frees it after the unpause", func() {
		ns := newNamespace("pausefw")
		d := deployment(ns, "pausefw", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		fw := waitAvailable(d, 1)[0]
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&fw), &fw)).To(Succeed())
		fw.Annotations[v2.PausedAnnotation] = "true"
		Expect(k8sClient.Update(ctx, &fw)).To(Succeed())

		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { d.Spec.Replicas = 0 })
		Eventually(func(g Gomega) {
			got := &v2.Firewall{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&fw), got)).To(Succeed())
			g.Expect(got.DeletionTimestamp.IsZero()).To(BeFalse())
			c := pausedCondition(got.Status.Conditions)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v2.ReasonDeletionPaused))
		}).Should(Succeed())
		Consistently(func() bool { return machineFreed(fw.Name) }, 2*time.Second, 250*time.Millisecond).Should(BeFalse())
		Expect(allocatedIn(ns)).To(HaveLen(1), "the machine is kept while paused")

		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&fw), &fw)).To(Succeed())
		delete(fw.Annotations, v2.PausedAnnotation)
		Expect(k8sClient.Update(ctx, &fw)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(firewallsIn(g, ns)).To(BeEmpty())
			g.Expect(allocatedIn(ns)).To(BeEmpty())
		}).Should(Succeed())
		Expect(machineFreed(fw.Name)).To(BeTrue(), "freed, not leaked")
	})

	It("lets the deletion of a paused deployment wait, with a condition, and finish after the unpause", func() {
		ns := newNamespace("pausedel")
		d := deployment(ns, "pausedel", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		fw := waitAvailable(d, 1)[0]
		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { d.Annotations[v2.PausedAnnotation] = "true" })
		Eventually(func(g Gomega) bool { return conditionTrue(getDeployment(g, d).Status.Conditions, v2.ConditionPaused) }).Should(BeTrue())
		Expect(k8sClient.Delete(ctx, d)).To(Succeed())
		Eventually(func(g Gomega) {
			c := pausedCondition(getDeployment(g, d).Status.Conditions)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v2.ReasonDeletionPaused))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(setsIn(g, ns)).To(HaveLen(1))
			for _, s := range setsIn(g, ns) {
				g.Expect(s.DeletionTimestamp.IsZero()).To(BeTrue(), "no cascade while paused")
			}
			g.Expect(allocatedIn(ns)).To(HaveLen(1))
		}, 3*time.Second, 250*time.Millisecond).Should(Succeed())

		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { delete(d.Annotations, v2.PausedAnnotation) })
		Eventually(func(g Gomega) {
			g.Expect(setsIn(g, ns)).To(BeEmpty())
			g.Expect(firewallsIn(g, ns)).To(BeEmpty())
			g.Expect(allocatedIn(ns)).To(BeEmpty())
		}).Should(Succeed())
		Expect(machineFreed(fw.Name)).To(BeTrue())
	})

	It("resumes sets and firewalls at once when the pause ends", func() {
		// Polls far apart: only the unpause can bring the children back in time.
		opts := testOptions()
		opts.Firewall.RunningPoll = time.Hour
		mgr, stop := startOwnManager("resume", opts)
		DeferCleanup(stop)
		ns := newOwnNamespace("resume", "resume", mgr)
		d := deployment(ns, "resume", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitAvailable(d, 1)

		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { d.Annotations[v2.ClusterAPIPausedAnnotation] = "" })
		Eventually(func(g Gomega) {
			for _, s := range setsIn(g, ns) {
				g.Expect(conditionTrue(s.Status.Conditions, v2.ConditionPaused)).To(BeTrue())
			}
			for _, fw := range firewallsIn(g, ns) {
				g.Expect(conditionTrue(fw.Status.Conditions, v2.ConditionPaused)).To(BeTrue())
			}
		}).Should(Succeed())

		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { delete(d.Annotations, v2.ClusterAPIPausedAnnotation) })
		Eventually(func(g Gomega) {
			for _, s := range setsIn(g, ns) {
				g.Expect(meta.IsStatusConditionFalse(s.Status.Conditions, v2.ConditionPaused)).To(BeTrue(), "set resumed")
			}
			for _, fw := range firewallsIn(g, ns) {
				g.Expect(meta.IsStatusConditionFalse(fw.Status.Conditions, v2.ConditionPaused)).To(BeTrue(), "firewall resumed")
			}
		}, 20*time.Second).Should(Succeed())
	})

	It("lets inherited annotations follow the deployment both ways", func() {
		ns := newNamespace("inherit")
		d := deployment(ns, "inherit", 1, metalsim.DefaultImage, map[string]string{
			v2.NoControllerConnectionAnnotation: "true", v2.WorkloadKubeconfigAnnotation: "nowhere"})
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Annotations).To(HaveKeyWithValue(v2.WorkloadKubeconfigAnnotation, "nowhere"))
		}).Should(Succeed())
		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { delete(d.Annotations, v2.WorkloadKubeconfigAnnotation) })
		Eventually(func(g Gomega) {
			for _, s := range setsIn(g, ns) {
				g.Expect(s.Annotations).NotTo(HaveKey(v2.WorkloadKubeconfigAnnotation))
			}
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Annotations).NotTo(HaveKey(v2.WorkloadKubeconfigAnnotation))
			g.Expect(fws[0].Annotations).To(HaveKey(v2.NoControllerConnectionAnnotation))
		}).Should(Succeed())
	})
})

var _ = Describe("revision history", func() {
	It("keeps history sets at their own template and rolls back to a revision", func() {
		ns := newNamespace("undo")
		d := deployment(ns, "undo", 1, metalsim.DefaultImage, noAgent)
		d.Spec.RevisionHistoryLimit = ptr.To[int32](1)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitAvailable(d, 1)
		setImage(d, newImage)
		var history v2.FirewallSet
		Eventually(func(g Gomega) {
			sets := setsIn(g, ns)
			g.Expect(sets).To(HaveLen(2))
			for _, s := range sets {
				if s.Annotations[v2.RevisionAnnotation] == "0" {
					history = s
					g.Expect(s.Spec.Replicas).To(Equal(0))
					g.Expect(s.Status.ReadyReplicas).To(Equal(0))
				} else {
					g.Expect(s.Status.ReadyReplicas).To(Equal(1))
				}
			}
			g.Expect(firewallsIn(g, ns)).To(HaveLen(1))
		}).Should(Succeed())
		// An in-place change reaches the live set only: history records what revision 0 ran.
		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) {
			d.Spec.Template.Spec.SSHPublicKeys = []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGHJ5+ap2qNh0vuQXzG3uUSSTd4JgzTmBQyzQz4wKpZb test"}
		})
		Eventually(func(g Gomega) {
			for _, s := range setsIn(g, ns) {
				if s.Name == history.Name {
					g.Expect(s.Spec.Template.Spec.Image).To(Equal(metalsim.DefaultImage))
					g.Expect(s.Spec.Template.Spec.SSHPublicKeys).To(BeEmpty())
				} else {
					g.Expect(s.Spec.Template.Spec.SSHPublicKeys).To(HaveLen(1))
				}
			}
		}).Should(Succeed())

		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) {
			d.Annotations[v2.RollbackToRevisionAnnotation] = "0"
		})
		Eventually(func(g Gomega) {
			got := getDeployment(g, d)
			g.Expect(got.Annotations).NotTo(HaveKey(v2.RollbackToRevisionAnnotation))
			g.Expect(got.Spec.Template.Spec.Image).To(Equal(metalsim.DefaultImage))
			sets := setsIn(g, ns)
			g.Expect(sets).To(HaveLen(2))
			for _, s := range sets {
				if s.Name == history.Name {
					g.Expect(s.Annotations[v2.RevisionAnnotation]).To(Equal("2"), "the history set is brought back")
					g.Expect(s.Annotations).To(HaveKey(v2.TargetSinceAnnotation), "its progress deadline counts from the rollback, not its creation")
					g.Expect(s.Status.ReadyReplicas).To(Equal(1))
					g.Expect(s.Spec.Distance).To(Equal(v2.FirewallShortestDistance))
				} else {
					g.Expect(s.Spec.Replicas).To(Equal(0), "the rolled-back set becomes history")
					g.Expect(s.Spec.Template.Spec.Image).To(Equal(newImage))
				}
			}
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Spec.Image).To(Equal(metalsim.DefaultImage))
			g.Expect(allocatedIn(ns)).To(HaveLen(1))
		}).Should(Succeed())
	})

	It("re-creates a firewall removed behind its back under its name, adopting its machine", func() {
		ns := newNamespace("shallow")
		d := deployment(ns, "shallow", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		fw := waitAvailable(d, 1)[0]
		machine := fw.Status.MachineStatus.MachineID
		// Gardener's shallow delete: drop the finalizers, then delete. The delete is conditional on
		// the version without finalizers, so a finalizer the controller put back meanwhile retries.
		Eventually(func() error {
			got := &v2.Firewall{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(&fw), got); err != nil {
				return err
			}
			got.Finalizers = nil
			if err := k8sClient.Update(ctx, got); err != nil {
				return err
			}
			rv := got.ResourceVersion
			return k8sClient.Delete(ctx, got, client.Preconditions{ResourceVersion: &rv})
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].UID).NotTo(Equal(fw.UID))
			g.Expect(fws[0].Status.MachineStatus).NotTo(BeNil())
			g.Expect(fws[0].Status.MachineStatus.MachineID).To(Equal(machine), "the machine is adopted")
			g.Expect(allocatedIn(ns)).To(HaveLen(1))
		}).Should(Succeed())
		Expect(countEvents(timeline(fw.Name), metalsim.TimelineAllocated)[fw.Name]).To(Equal(1), "no second machine")
	})
})

var _ = Describe("maintenance", func() {
	It("reports a failing maintenance step and rolls anyway (issue 12 item 7)", func() {
		ns := newNamespace("maintfail")
		d := deployment(ns, "maintfail", 1, newImage, noAgent)
		d.Spec.AutoUpdate.MachineImage = true
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitAvailable(d, 1)

		sim.Faults().FailNext(metal.OpImageLatest, 1000, 500)
		DeferCleanup(func() { sim.Faults().FailNext(metal.OpImageLatest, 0, 0) })
		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { d.Annotations[v2.MaintenanceAnnotation] = "true" })
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(getDeployment(g, d).Status.Conditions, v2.ConditionMaintained)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())

		setImage(d, oldestImage)
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Spec.Image).To(Equal(oldestImage))
			g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			g.Expect(setsIn(g, ns)).To(HaveLen(1))
			got := getDeployment(g, d)
			g.Expect(got.Annotations).To(HaveKey(v2.MaintenanceAnnotation), "kept for the retry")
			g.Expect(conditionTrue(got.Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
		}).Should(Succeed())
	})
})
