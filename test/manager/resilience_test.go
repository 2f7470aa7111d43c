package manager

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

// oldestImage is a third firewall image of the simulator's fleet.
const oldestImage = "firewall-ubuntu-2.0.20230101"

// eventReasons lists the reasons of the events.k8s.io events recorded in the namespace.
func eventReasons(g Gomega, namespace string) []string {
	cs, err := kubernetes.NewForConfig(restConfig)
	g.Expect(err).NotTo(HaveOccurred())
	list, err := cs.EventsV1().Events(namespace).List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason)
	}
	return out
}

// maxConcurrentMachines replays the timeline: the most machines allocated at once.
func maxConcurrentMachines(events []metalsim.TimelineEvent) int {
	n, most := 0, 0
	for _, e := range events {
		switch e.Kind {
		case metalsim.TimelineAllocated:
			n++
		case metalsim.TimelineFreed, metalsim.TimelineVanished:
			n--
		}
		most = max(most, n)
	}
	return most
}

// agent plays the firewall agents of a namespace: every running firewall admitted by accept
// reports a successful apply at most once a second.
type agent struct {
	last map[string]time.Time
}

func newAgent() *agent { return &agent{last: map[string]time.Time{}} }

func (a *agent) report(g Gomega, namespace string, accept func(*v2.Firewall) bool) {
	for _, fw := range firewallsIn(g, namespace) {
		if fw.Status.Phase != v2.FirewallPhaseRunning || !fw.DeletionTimestamp.IsZero() || !accept(&fw) {
			continue
		}
		if time.Since(a.last[fw.Name]) < time.Second && fw.Status.ControllerStatus != nil &&
			fw.Status.ControllerStatus.ActualDistance == fw.Distance && fw.Status.ControllerStatus.ObservedGeneration == fw.Generation {
			continue
		}
		reportAgent(g, &fw)
		a.last[fw.Name] = time.Now()
	}
}

var _ = Describe("a FirewallDeployment under change and failure", func() {
	It("rolls two replicas: every old machine is freed only after all new ones phoned home", func() {
		ns := newNamespace("roll2")
		d := deployment(ns, "roll2", 2, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		old := waitAvailable(d, 2)
		oldNames := []string{old[0].Name, old[1].Name}

		setImage(d, newImage)
		minAvailable := 2
		var fws []v2.Firewall
		Eventually(func(g Gomega) {
			got := getDeployment(g, d)
			minAvailable = min(minAvailable, got.Status.AvailableReplicas)
			fws = firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(2))
			for _, fw := range fws {
				g.Expect(oldNames).NotTo(ContainElement(fw.Name))
				g.Expect(fw.Spec.Image).To(Equal(newImage))
				g.Expect(fw.Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			}
			g.Expect(setsIn(g, ns)).To(HaveLen(1))
			g.Expect(conditionTrue(got.Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
			g.Expect(got.Status.ReadyReplicas).To(Equal(2))
			g.Expect(allocatedIn(ns)).To(HaveLen(2))
		}).Should(Succeed())
		Expect(minAvailable).To(BeNumerically(">=", 2), "the deployment never reported fewer than 2 available firewalls")

		events := timeline("roll2-")
		var lastNewPhonedHome time.Time
		for _, fw := range fws {
			t := firstEvent(events, fw.Name, metalsim.TimelinePhonedHome)
			Expect(t).NotTo(BeZero(), fw.Name+" phoned home")
			if t.After(lastNewPhonedHome) {
				lastNewPhonedHome = t
			}
		}
		for _, name := range oldNames {
			freed := firstEvent(events, name, metalsim.TimelineFreed)
			Expect(freed).NotTo(BeZero(), name+" freed")
			Expect(freed).To(BeTemporally(">", lastNewPhonedHome), name+" freed only after every new firewall phoned home")
		}
		Expect(maxConcurrentMachines(events)).To(Equal(4), "two old plus two new, nothing more")
	})

	It("converges on the last of rapid successive changes and frees the intermediate sets; a change back reuses the live set", func() {
		ns := newNamespace("rapid")
		d := deployment(ns, "rapid", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		first := waitAvailable(d, 1)[0]

		revisions := func(g Gomega) []string {
			var out []string
			for _, s := range setsIn(g, ns) {
				out = append(out, s.Annotations[v2.RevisionAnnotation])
			}
			return out
		}
		// A -> B -> C -> A, each change as soon as the previous one has its set. When the live set
		// of A is still there, the way back finds it (like a Deployment its ReplicaSet): it becomes
		// revision 3 and keeps its firewall; otherwise A gets a new set. B and C go either way.
		setImage(d, newImage)
		Eventually(revisions).Should(ContainElement("1"))
		setImage(d, oldestImage)
		Eventually(revisions).Should(ContainElement("2"))
		setImage(d, metalsim.DefaultImage)

		var last v2.Firewall
		Eventually(func(g Gomega) {
			sets := setsIn(g, ns)
			g.Expect(sets).To(HaveLen(1))
			g.Expect(sets[0].Annotations[v2.RevisionAnnotation]).To(Equal("3"))
			g.Expect(sets[0].Spec.Template.Spec.Image).To(Equal(metalsim.DefaultImage))
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Spec.Image).To(Equal(metalsim.DefaultImage))
			g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			g.Expect(fws[0].Distance).To(Equal(v2.FirewallShortestDistance))
			g.Expect(conditionTrue(getDeployment(g, d).Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
			machines := allocatedIn(ns)
			g.Expect(machines).To(HaveLen(1))
			g.Expect(machines[0].Allocation.Hostname).To(Equal(fws[0].Name))
			last = fws[0]
		}).Should(Succeed())
		Consistently(func() int { return len(allocatedIn(ns)) }, 2*time.Second, 250*time.Millisecond).Should(Equal(1))

		events := timeline("rapid-")
		allocated, freed := countEvents(events, metalsim.TimelineAllocated), countEvents(events, metalsim.TimelineFreed)
		Expect(allocated).To(HaveKey(first.Name))
		Expect(allocated).To(HaveKey(last.Name))
		for name, n := range allocated {
			Expect(n).To(Equal(1), name+" allocated once")
			if name != last.Name {
				Expect(freed[name]).To(Equal(1), name+" freed (no leaked machine)")
			}
		}
		Expect(freed).NotTo(HaveKey(last.Name))
	})

	It("survives a manager restart mid-rollout: nothing duplicated or leaked, the rollout completes", func() {
		mgr, stopFirst := startOwnManager("restart", testOptions())
		DeferCleanup(stopFirst)
		ns := newOwnNamespace("restart", "restart", mgr)
		d := deployment(ns, "restart", 2, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		old := waitAvailable(d, 2)

		setImage(d, newImage)
		// Stop the manager while the new machines are being allocated and provisioned.
		Eventually(func() int { return len(allocatedIn(ns)) }).Should(BeNumerically(">", 2))
		stopFirst()
		setsAtStop := len(setsIn(Default, ns))

		mgr2, stopSecond := startOwnManager("restart", testOptions())
		DeferCleanup(stopSecond)
		waitForNamespace(mgr2.GetClient(), ns)

		var fws []v2.Firewall
		Eventually(func(g Gomega) {
			fws = firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(2))
			for _, fw := range fws {
				g.Expect(fw.Name).NotTo(BeElementOf(old[0].Name, old[1].Name))
				g.Expect(fw.Spec.Image).To(Equal(newImage))
				g.Expect(fw.Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			}
			sets := setsIn(g, ns)
			g.Expect(sets).To(HaveLen(1))
			g.Expect(sets[0].Annotations[v2.RevisionAnnotation]).To(Equal("1"), "no second new set after the restart")
			g.Expect(conditionTrue(getDeployment(g, d).Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
			g.Expect(allocatedIn(ns)).To(HaveLen(2))
		}).Should(Succeed())
		Expect(setsAtStop).To(Equal(2), "stopped mid-rollout")
		Consistently(func() int { return len(allocatedIn(ns)) }, 2*time.Second, 250*time.Millisecond).Should(Equal(2))

		events := timeline("restart-")
		allocated, freed := countEvents(events, metalsim.TimelineAllocated), countEvents(events, metalsim.TimelineFreed)
		Expect(allocated).To(HaveLen(4), "two old and two new machines, none allocated twice")
		for name, n := range allocated {
			Expect(n).To(Equal(1), name+" allocated once")
		}
		for _, fw := range old {
			Expect(freed[fw.Name]).To(Equal(1), fw.Name+" freed")
		}
	})

	It("backs off on a metal-api 5xx burst and recovers with exactly one machine per firewall", func() {
		ns := newNamespace("burst")
		allocBefore := sim.RequestCount(metal.OpFirewallAllocate)
		findBefore := sim.RequestCount(metal.OpFirewallFind)
		sim.Faults().FailNext(metal.OpFirewallFind, 12, 503)
		sim.Faults().FailNext(metal.OpFirewallAllocate, 2, 500)
		DeferCleanup(func() {
			sim.Faults().FailNext(metal.OpFirewallFind, 0, 0)
			sim.Faults().FailNext(metal.OpFirewallAllocate, 0, 0)
		})

		d := deployment(ns, "burst", 2, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		fws := waitAvailable(d, 2)
		Expect(sim.RequestCount(metal.OpFirewallFind)-findBefore).To(BeNumerically(">", 12), "the failing finds were retried")
		Expect(sim.RequestCount(metal.OpFirewallAllocate)-allocBefore).To(BeNumerically(">=", 4), "two failed and two good allocations")

		Consistently(func() int { return len(allocatedIn(ns)) }, 2*time.Second, 250*time.Millisecond).Should(Equal(2))
		allocated := countEvents(timeline("burst-"), metalsim.TimelineAllocated)
		Expect(allocated).To(HaveLen(2))
		for _, fw := range fws {
			Expect(allocated[fw.Name]).To(Equal(1), fw.Name+" allocated once")
		}
		Eventually(func(g Gomega) { g.Expect(eventReasons(g, ns)).To(ContainElement("FailedCreate")) }).Should(Succeed())
	})

	It("re-creates a machine that vanished from metal-api, under the same name", func() {
		ns := newNamespace("vanish")
		d := deployment(ns, "vanish", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		fw := waitAvailable(d, 1)[0]
		oldID := fw.Status.MachineStatus.MachineID

		Expect(sim.Faults().Vanish(oldID)).To(Succeed())
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Name).To(Equal(fw.Name), "the same Firewall object")
			g.Expect(fws[0].Status.MachineStatus).NotTo(BeNil())
			g.Expect(fws[0].Status.MachineStatus.MachineID).NotTo(BeElementOf("", oldID))
			g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			machines := allocatedIn(ns)
			g.Expect(machines).To(HaveLen(1))
			g.Expect(machines[0].ID).To(Equal(fws[0].Status.MachineStatus.MachineID))
			g.Expect(machines[0].Allocation.Hostname).To(Equal(fw.Name))
		}).Should(Succeed())
		waitAvailable(d, 1)

		events := timeline(fw.Name)
		vanished := firstEvent(events, fw.Name, metalsim.TimelineVanished)
		Expect(vanished).NotTo(BeZero())
		Expect(countEvents(events, metalsim.TimelineAllocated)[fw.Name]).To(Equal(2), "allocated once more after it vanished")
		Expect(events[len(events)-1].Time).To(BeTemporally(">=", vanished))
		Eventually(func(g Gomega) { g.Expect(eventReasons(g, ns)).To(ContainElement(v2.ReasonMachineVanished)) }).Should(Succeed())
	})

	It("reports a crash-looping machine and does not roll onto it", func() {
		ns := newNamespace("crash")
		d := deployment(ns, "crash", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		old := waitAvailable(d, 1)[0]

		// Hold the allocation back long enough to inject the crash loop by hostname.
		sim.Faults().DelayNext(metal.OpFirewallAllocate, 1, 3*time.Second)
		setImage(d, newImage)
		var crashing v2.Firewall
		Eventually(func(g Gomega) {
			for _, fw := range firewallsIn(g, ns) {
				if fw.Name != old.Name {
					crashing = fw
				}
			}
			g.Expect(crashing.Name).NotTo(BeEmpty())
		}).Should(Succeed())
		sim.Faults().CrashLoop(crashing.Name)
		DeferCleanup(func() { sim.Faults().StopCrashLoop(crashing.Name) })

		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&crashing), &crashing)).To(Succeed())
			g.Expect(crashing.Status.Phase).To(Equal(v2.FirewallPhaseCrashing))
			g.Expect(crashing.Status.MachineStatus).NotTo(BeNil())
			g.Expect(crashing.Status.MachineStatus.CrashLoop).To(BeTrue())
			c := meta.FindStatusCondition(crashing.Status.Conditions, v2.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v2.ReasonCrashLoop))
		}).Should(Succeed())
		Consistently(func(g Gomega) {
			got := getDeployment(g, d)
			g.Expect(got.Status.UpdatedReadyReplicas).To(Equal(0), "the new set has no ready firewall")
			g.Expect(got.Status.ReadyReplicas).To(Equal(1), "the old firewall carries the traffic and counts, as a Deployment counts its old ReplicaSet")
			g.Expect(got.Status.AvailableReplicas).To(Equal(1))
			g.Expect(got.Status.UpdatedReplicas).To(Equal(1))
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v2.ConditionProgressing)).To(BeTrue())
			g.Expect(setsIn(g, ns)).To(HaveLen(2))
			var fw v2.Firewall
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&old), &fw)).To(Succeed())
			g.Expect(fw.DeletionTimestamp).To(BeNil())
			g.Expect(fw.Distance).To(Equal(v2.FirewallShortestDistance), "traffic stays on the old firewall")
		}, 4*time.Second, 250*time.Millisecond).Should(Succeed())
		events := timeline("crash-")
		Expect(firstEvent(events, old.Name, metalsim.TimelineFreed)).To(BeZero(), "the old machine is kept")
		Expect(firstEvent(events, crashing.Name, metalsim.TimelineCrashed)).NotTo(BeZero())

		// Once the machine stops crashing the rollout completes.
		sim.Faults().StopCrashLoop(crashing.Name)
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Name).To(Equal(crashing.Name))
			g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			g.Expect(fws[0].Status.MachineStatus.CrashLoop).To(BeFalse())
			g.Expect(allocatedIn(ns)).To(HaveLen(1))
		}).Should(Succeed())
	})

	It("adopts a machine allocated before its Firewall existed instead of allocating another", func() {
		ns := newNamespace("adopt")
		name := "adopt-" + fwutil.RandomSuffix(5)
		spec := deployment(ns, "adopt", 1, metalsim.DefaultImage, nil).Spec.Template.Spec
		auto := true
		// As the upstream manager left it: managed-by tag, no namespace tag.
		m, err := metalClient.AllocateFirewall(ctx, &metal.FirewallCreateRequest{
			Name: name, Hostname: name, ProjectID: spec.Project, PartitionID: spec.Partition,
			SizeID: spec.Size, ImageID: spec.Image, SSHPubKeys: []string{},
			Tags: []string{v2.ManagedByTag + "=" + v2.ManagedByValue},
			Networks: []metal.MachineAllocationNetwork{
				{NetworkID: metalsim.DefaultExternalNetwork, AutoAcquire: &auto},
				{NetworkID: metalsim.DefaultPrivateNetwork, AutoAcquire: &auto},
			},
		})
		Expect(err).NotTo(HaveOccurred())

		fw := &v2.Firewall{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: noAgent},
			Spec:       spec,
		}
		Expect(k8sClient.Create(ctx, fw)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fw), fw)).To(Succeed())
			g.Expect(fw.Status.MachineStatus).NotTo(BeNil())
			g.Expect(fw.Status.MachineStatus.MachineID).To(Equal(m.ID))
			g.Expect(fw.Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			g.Expect(conditionTrue(fw.Status.Conditions, v2.ConditionCreated)).To(BeTrue())
			got, ok := sim.Machine(m.ID)
			g.Expect(ok).To(BeTrue())
			g.Expect(got.Tags).To(ContainElement(v2.NamespaceTag+"="+ns), "tags synced onto the adopted machine")
		}).Should(Succeed())
		Consistently(func() int { return len(allocatedIn(ns)) }, 2*time.Second, 250*time.Millisecond).Should(Equal(1))
		Expect(countEvents(timeline(name), metalsim.TimelineAllocated)[name]).To(Equal(1), "never allocated a second machine")

		Expect(k8sClient.Delete(ctx, fw)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(allocatedIn(ns)).To(BeEmpty())
			g.Expect(firstEvent(timeline(name), name, metalsim.TimelineFreed)).NotTo(BeZero())
		}).Should(Succeed())
	})
})

var _ = Describe("timeouts", Ordered, func() {
	const createTimeout, healthTimeout = 8 * time.Second, 6 * time.Second
	var mgrStarted bool
	var ownMgr interface{ GetClient() client.Client }

	BeforeAll(func() {
		opts := testOptions()
		opts.Timeouts = fwutil.Timeouts{Create: createTimeout, Health: healthTimeout}
		opts.Firewall.ConnectedThreshold = 3 * time.Second
		opts.Firewall.SeedConnectedThreshold = 3 * time.Second
		mgr, stop := startOwnManager("timeouts", opts)
		DeferCleanup(stop)
		ownMgr, mgrStarted = mgr, true
	})

	newNS := func(name string) string {
		Expect(mgrStarted).To(BeTrue())
		ns := createNamespace(name, map[string]string{ownManagerLabel: "timeouts"})
		waitForNamespace(ownMgr.GetClient(), ns)
		return ns
	}
	// cleanup deletes the deployment and waits for its machines to be freed, so that nothing
	// keeps timing out in the background.
	cleanup := func(d *v2.FirewallDeployment) {
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, d))).To(Succeed())
			Eventually(func() int { return len(allocatedIn(d.Namespace)) }).Should(BeZero())
		})
	}

	It("replaces a firewall whose install stalls, counting the create timeout from the allocation", func() {
		ns := newNS("stall")
		sim.Faults().DelayNext(metal.OpFirewallAllocate, 1, 3*time.Second)
		d := deployment(ns, "stall", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		cleanup(d)
		var first v2.Firewall
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			first = fws[0]
		}).Should(Succeed())
		sim.Faults().StallProvisioning(first.Name)
		DeferCleanup(func() { sim.Faults().ResumeProvisioning(first.Name) })

		var replacement v2.Firewall
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Name).NotTo(Equal(first.Name))
			g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			g.Expect(conditionTrue(getDeployment(g, d).Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
			g.Expect(allocatedIn(ns)).To(HaveLen(1))
			replacement = fws[0]
		}, 2*time.Minute).Should(Succeed())

		events := timeline("stall-")
		allocFirst := firstEvent(events, first.Name, metalsim.TimelineAllocated)
		Expect(allocFirst).NotTo(BeZero())
		Expect(firstEvent(events, first.Name, metalsim.TimelinePhonedHome)).To(BeZero(), "the stalled install never finished")
		Expect(firstEvent(events, first.Name, metalsim.TimelineFreed)).NotTo(BeZero())
		// Conditions and timestamps have second precision, hence the one second of slack.
		var firstReplacement time.Time
		for _, e := range events {
			if e.Kind == metalsim.TimelineAllocated && e.Hostname != first.Name {
				firstReplacement = e.Time
				break
			}
		}
		Expect(firstReplacement.Sub(allocFirst)).To(BeNumerically(">=", createTimeout-time.Second),
			"the create timeout runs from the allocation, it does not fire at once")
		Expect(firstEvent(events, replacement.Name, metalsim.TimelinePhonedHome)).NotTo(BeZero())
		Expect(maxConcurrentMachines(events)).To(BeNumerically("<=", 2))
	})

	It("replaces a firewall whose agent never connects, without piling up machines", func() {
		ns := newNS("agentless")
		d := deployment(ns, "agentless", 1, metalsim.DefaultImage, nil)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		cleanup(d)

		// Nobody reports for the agent: every firewall times out and is replaced, one at a time.
		Eventually(func() int {
			return len(countEvents(timeline("agentless-"), metalsim.TimelineAllocated))
		}, 2*time.Minute).Should(BeNumerically(">=", 3))
		events := timeline("agentless-")
		Expect(maxConcurrentMachines(events)).To(BeNumerically("<=", 2), "a firewall that never became ready is not kept around")
		for name, n := range countEvents(events, metalsim.TimelineAllocated) {
			Expect(n).To(Equal(1), name+" allocated once")
		}
		Eventually(func(g Gomega) { g.Expect(eventReasons(g, ns)).To(ContainElement(string(fwutil.HealthCreateTimeout))) }).Should(Succeed())

		// Once an agent reports, the current firewall stays.
		a := newAgent()
		Eventually(func(g Gomega) {
			a.report(g, ns, func(*v2.Firewall) bool { return true })
			g.Expect(conditionTrue(getDeployment(g, d).Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
			g.Expect(firewallsIn(g, ns)).To(HaveLen(1))
			g.Expect(allocatedIn(ns)).To(HaveLen(1))
		}, 2*time.Minute).Should(Succeed())
	})

	It("replaces a provisioned firewall whose agent stops reporting after the health timeout, the replacement first", func() {
		ns := newNS("health")
		d := deployment(ns, "health", 1, metalsim.DefaultImage, nil)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		cleanup(d)
		a := newAgent()
		var first v2.Firewall
		Eventually(func(g Gomega) {
			a.report(g, ns, func(*v2.Firewall) bool { return true })
			g.Expect(conditionTrue(getDeployment(g, d).Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(conditionTrue(fws[0].Status.Conditions, v2.ConditionProvisioned)).To(BeTrue())
			first = fws[0]
		}, 2*time.Minute).Should(Succeed())

		// The first firewall's agent falls silent; the others keep reporting.
		var replacement v2.Firewall
		Eventually(func(g Gomega) {
			a.report(g, ns, func(fw *v2.Firewall) bool { return fw.Name != first.Name })
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			g.Expect(fws[0].Name).NotTo(Equal(first.Name))
			g.Expect(conditionTrue(getDeployment(g, d).Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
			g.Expect(allocatedIn(ns)).To(HaveLen(1))
			replacement = fws[0]
		}, 2*time.Minute).Should(Succeed())

		events := timeline("health-")
		freed := firstEvent(events, first.Name, metalsim.TimelineFreed)
		Expect(freed).NotTo(BeZero())
		Expect(freed).To(BeTemporally(">", firstEvent(events, replacement.Name, metalsim.TimelinePhonedHome)),
			"the replacement was up before the unhealthy firewall was freed")
		Eventually(func(g Gomega) { g.Expect(eventReasons(g, ns)).To(ContainElement(string(fwutil.HealthHealthTimeout))) }).Should(Succeed())
	})
})
