package manager

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

// Issue 20 item 4: what the status says is what is going on.
var _ = Describe("honest status", func() {
	It("names metal-api's allocation error on the set and the deployment", func() {
		ns := newNamespace("wrong-project")
		d := deployment(ns, "wrong", 1, metalsim.DefaultImage, noAgent)
		d.Spec.Template.Spec.Project = "no-such-project"
		Expect(k8sClient.Create(ctx, d)).To(Succeed())

		Eventually(func(g Gomega) {
			sets := setsIn(g, ns)
			g.Expect(sets).To(HaveLen(1))
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			c := meta.FindStatusCondition(sets[0].Status.Conditions, v2.ConditionFirewallsCreated)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(v2.ReasonAllocationFailed))
			g.Expect(c.Message).To(HavePrefix("firewall " + fws[0].Name + ": metal-api allocation failed:"))
			g.Expect(c.Message).To(ContainSubstring("404 Not Found"))
			g.Expect(c.Message).To(ContainSubstring(`project with id "no-such-project" not found`))
			g.Expect(meta.FindStatusCondition(sets[0].Status.Conditions, v2.ConditionReady).Message).To(ContainSubstring("no-such-project"))

			got := getDeployment(g, d)
			dc := meta.FindStatusCondition(got.Status.Conditions, v2.ConditionFirewallsCreated)
			g.Expect(dc).NotTo(BeNil())
			g.Expect(dc.Reason).To(Equal(v2.ReasonAllocationFailed))
			g.Expect(dc.Message).To(Equal("set " + sets[0].Name + ": " + c.Message))
			available := meta.FindStatusCondition(got.Status.Conditions, v2.ConditionAvailable)
			g.Expect(available.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(available.Message).To(HavePrefix("0 of 1 firewalls available; set " + sets[0].Name + ": firewall " + fws[0].Name))
			g.Expect(available.Message).To(ContainSubstring("no-such-project"))
		}).Should(Succeed())
		Expect(allocatedIn(ns)).To(BeEmpty())
	})

	It("clears the allocation error once metal-api allocates again", func() {
		ns := newNamespace("no-machine")
		sim.Faults().FailNext(metal.OpFirewallAllocate, 1000, http.StatusUnprocessableEntity)
		DeferCleanup(func() { sim.Faults().FailNext(metal.OpFirewallAllocate, 0, 0) })
		d := deployment(ns, "nomachine", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(getDeployment(g, d).Status.Conditions, v2.ConditionFirewallsCreated)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v2.ReasonAllocationFailed))
			g.Expect(c.Message).To(ContainSubstring("422 Unprocessable Entity"))
		}).Should(Succeed())

		sim.Faults().FailNext(metal.OpFirewallAllocate, 0, 0)
		waitAvailable(d, 1)
		Eventually(func(g Gomega) {
			got := getDeployment(g, d)
			c := meta.FindStatusCondition(got.Status.Conditions, v2.ConditionFirewallsCreated)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(v2.ReasonFirewallsCreated))
			g.Expect(meta.FindStatusCondition(got.Status.Conditions, v2.ConditionAvailable).Message).To(Equal("1 of 1 firewalls available"))
			sets := setsIn(g, ns)
			g.Expect(sets).To(HaveLen(1))
			g.Expect(conditionTrue(sets[0].Status.Conditions, v2.ConditionFirewallsCreated)).To(BeTrue())
		}).Should(Succeed())
	})

	It("gives sets the template's labels, and template label changes reach sets and firewalls in place", func() {
		ns := newNamespace("labels")
		d := deployment(ns, "labelled", 1, metalsim.DefaultImage, noAgent)
		d.Labels = map[string]string{"team": "network"}
		d.Spec.Template.ObjectMeta.Labels["tier"] = "gold"
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		fw := waitAvailable(d, 1)[0]

		var sets v2.FirewallSetList
		Expect(k8sClient.List(ctx, &sets, client.InNamespace(ns), client.MatchingLabels{"app": "labelled", "tier": "gold"})).To(Succeed())
		Expect(sets.Items).To(HaveLen(1), "kubectl get fwset -l app=labelled,tier=gold finds the set")
		Expect(sets.Items[0].Labels).To(HaveKeyWithValue("team", "network"))
		Expect(sets.Items[0].Labels).To(HaveKeyWithValue(fwutil.DeploymentLabel, "labelled"))
		setName := sets.Items[0].Name

		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) {
			d.Spec.Template.ObjectMeta.Labels["tier"] = "silver"
			d.Spec.Template.ObjectMeta.Labels["zone"] = "a"
		})
		Eventually(func(g Gomega) {
			all := setsIn(g, ns)
			g.Expect(all).To(HaveLen(1))
			g.Expect(all[0].Spec.Template.ObjectMeta.Labels).To(HaveKeyWithValue("tier", "silver"))
			g.Expect(all[0].Labels).To(HaveKeyWithValue("tier", "silver"))
			var list v2.FirewallSetList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{"tier": "silver", "zone": "a"})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1))
			g.Expect(list.Items[0].Name).To(Equal(setName), "a label change rolls nothing")
			g.Expect(list.Items[0].Spec.Selector).To(Equal(sets.Items[0].Spec.Selector), "the selector stays")
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Name).To(Equal(fw.Name))
			g.Expect(fws[0].Labels).To(HaveKeyWithValue("tier", "silver"))
			g.Expect(fws[0].Labels).To(HaveKeyWithValue("zone", "a"))
		}).Should(Succeed())
		Expect(allocatedIn(ns)).To(HaveLen(1))
	})

	It("moves the machine's set tag to the set that adopts its firewall, at once", func() {
		// No running poll within the test: only the adoption itself can bring the tag along.
		opts := testOptions()
		opts.Firewall.RunningPoll = time.Hour
		mgr, stop := startOwnManager("adopt-tag", opts)
		DeferCleanup(stop)
		ns := newOwnNamespace("adopt-tag", "adopt-tag", mgr)
		own := mgr.GetClient() // the cache the controllers read
		d := deployment(ns, "tagged", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		fw := waitAvailable(d, 1)[0]
		machineID := fw.Status.MachineStatus.MachineID
		oldSet := metav1.GetControllerOf(&fw).Name
		Eventually(func(g Gomega) {
			m, ok := sim.Machine(machineID)
			g.Expect(ok).To(BeTrue())
			g.Expect(m.Tags).To(ContainElement(v2.SetTag + "=" + oldSet))
		}).Should(Succeed())

		// The set goes without its finalizer and leaves its firewall behind (a shallow delete
		// with orphaned dependents; envtest has no garbage collector, so the test orphans it).
		// The pause keeps the deployment from replacing the set meanwhile.
		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { d.Annotations[v2.PausedAnnotation] = "true" })
		Eventually(func(g Gomega) {
			g.Expect(conditionTrue(getDeployment(g, d).Status.Conditions, v2.ConditionPaused)).To(BeTrue())
			for _, s := range setsIn(g, ns) {
				g.Expect(conditionTrue(s.Status.Conditions, v2.ConditionPaused)).To(BeTrue())
			}
		}).Should(Succeed())
		Eventually(func() error {
			got := &v2.Firewall{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(&fw), got); err != nil {
				return err
			}
			got.OwnerReferences = nil
			return k8sClient.Update(ctx, got)
		}).Should(Succeed())
		Eventually(func() error {
			set := &v2.FirewallSet{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: oldSet}, set); err != nil {
				return client.IgnoreNotFound(err)
			}
			set.Finalizers = nil
			if err := k8sClient.Update(ctx, set); err != nil {
				return err
			}
			rv := set.ResourceVersion
			if err := k8sClient.Delete(ctx, set, client.Preconditions{ResourceVersion: &rv}); err != nil {
				return err
			}
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(set), set) // NotFound ends the loop
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			var sets v2.FirewallSetList
			g.Expect(own.List(ctx, &sets, client.InNamespace(ns))).To(Succeed())
			g.Expect(sets.Items).To(BeEmpty())
			var fws v2.FirewallList
			g.Expect(own.List(ctx, &fws, client.InNamespace(ns))).To(Succeed())
			g.Expect(fws.Items).To(HaveLen(1))
			g.Expect(metav1.GetControllerOf(&fws.Items[0])).To(BeNil())
		}).Should(Succeed())

		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { delete(d.Annotations, v2.PausedAnnotation) })
		var newSet string
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Name).To(Equal(fw.Name), "the orphan is adopted, not replaced")
			owner := metav1.GetControllerOf(&fws[0])
			g.Expect(owner).NotTo(BeNil())
			g.Expect(owner.Name).NotTo(Equal(oldSet))
			newSet = owner.Name
			m, ok := sim.Machine(machineID)
			g.Expect(ok).To(BeTrue())
			g.Expect(m.Tags).To(ContainElement(v2.SetTag+"="+newSet), "the tag follows the adoption")
			g.Expect(m.Tags).NotTo(ContainElement(v2.SetTag + "=" + oldSet))
		}).Should(Succeed())
		Expect(allocatedIn(ns)).To(HaveLen(1))
		Expect(countEvents(timeline(fw.Name), metalsim.TimelineAllocated)[fw.Name]).To(Equal(1), "no second machine")
	})

	It("gives a set brought back by a rollback its own progress deadline", func() {
		const deadline = 20 // seconds
		ns := newNamespace("rollback-deadline")
		d := deployment(ns, "back", 1, metalsim.DefaultImage, noAgent)
		d.Spec.RevisionHistoryLimit = ptr.To[int32](1)
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](deadline)
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
					g.Expect(s.Spec.Replicas).To(BeZero())
				}
			}
			g.Expect(meta.FindStatusCondition(getDeployment(g, d).Status.Conditions, v2.ConditionProgressing).Reason).To(Equal(v2.ReasonNewFirewallSetAvailable))
		}).Should(Succeed())
		// The history set must be older than the deadline when it is brought back.
		Eventually(func() time.Duration { return time.Since(history.CreationTimestamp.Time) }, 2*deadline*time.Second, time.Second).
			Should(BeNumerically(">", (deadline+2)*time.Second))

		updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) {
			d.Annotations[v2.RollbackToRevisionAnnotation] = "0"
		})
		exceeded := ""
		Eventually(func(g Gomega) {
			got := getDeployment(g, d)
			p := meta.FindStatusCondition(got.Status.Conditions, v2.ConditionProgressing)
			if p != nil && p.Reason == v2.ReasonProgressDeadlineExceeded && exceeded == "" {
				exceeded = p.Message
			}
			g.Expect(got.Spec.Template.Spec.Image).To(Equal(metalsim.DefaultImage))
			g.Expect(p.Reason).To(Equal(v2.ReasonNewFirewallSetAvailable))
			back := &v2.FirewallSet{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&history), back)).To(Succeed())
			g.Expect(back.Annotations[v2.RevisionAnnotation]).To(Equal("2"))
			g.Expect(back.Status.ReadyReplicas).To(Equal(1))
		}).Should(Succeed())
		Expect(exceeded).To(BeEmpty(), "the deadline counts from the rollback, not from the set's creation")
	})

	It("names every missing userdata source in UserdataReady", func() {
		ns := newNamespace("missing")
		d := deployment(ns, "missing", 1, metalsim.DefaultImage, noAgent)
		d.Spec.Template.Spec.Userdata = ""
		d.Spec.Template.Spec.UserdataContents = []v2.UserdataContent{
			{Path: "/etc/firewall-controller/seed.yaml", SecretRef: &v2.UserdataSecretRef{Name: "seed-kubeconfig"}},
			{Path: "/etc/firewall-controller/shoot.yaml", SecretRef: &v2.UserdataSecretRef{Name: "shoot-kubeconfig"}},
			{Path: "/etc/firewall-controller/config.yaml", ConfigMapRef: &v2.UserdataConfigMapRef{Name: "agent-config", Key: "config"}},
		}
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(getDeployment(g, d).Status.Conditions, v2.ConditionUserdataReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(Equal(`3 sources missing: ConfigMap "agent-config" (key "config") not found; ` +
				`Secret "seed-kubeconfig" (key "value") not found; Secret "shoot-kubeconfig" (key "value") not found`))
		}).Should(Succeed())
		Expect(setsIn(Default, ns)).To(BeEmpty())
	})
})
