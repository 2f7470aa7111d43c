package manager

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/labels"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

var _ = Describe("idempotent allocation", func() {
	It("ends with exactly one machine when an allocate completes after the client's timeout", func() {
		// A client that gives up after 1s, an allocation metal-api completes after 4s.
		impatient, err := metal.New(metal.Config{URL: simURL, HMACKey: "metal-admin-key", HMACAuthType: metal.AuthTypeAdmin, Timeout: time.Second})
		Expect(err).NotTo(HaveOccurred())
		opts := testOptions()
		opts.Firewall.AllocationGrace = 20 * time.Second
		sel, err := labels.Parse(ownManagerLabel + "=slow")
		Expect(err).NotTo(HaveOccurred())
		opts.NamespaceSelector = sel
		mgr, stop := startManagerWith(opts, impatient, nil)
		DeferCleanup(stop)
		ns := newOwnNamespace("slow", "slow", mgr)

		sim.Faults().SlowAllocate(1, 4*time.Second)
		DeferCleanup(func() { sim.Faults().SlowAllocate(0, 0) })
		d := deployment(ns, "slow", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		fw := waitAvailable(d, 1)[0]
		Expect(allocatedIn(ns)).To(HaveLen(1))
		Consistently(func() int { return len(allocatedIn(ns)) }, 3*time.Second, 250*time.Millisecond).Should(Equal(1))
		allocated := countEvents(timeline("slow-"), metalsim.TimelineAllocated)
		Expect(allocated).To(Equal(map[string]int{fw.Name: 1}), "one allocation, the slow one")
		Expect(fw.Status.AllocationStarted).To(BeNil(), "the allocation is confirmed")
	})

	It("frees a duplicate machine and keeps one", func() {
		ns := newNamespace("dup")
		sim.Faults().DuplicateNextAllocate(1)
		DeferCleanup(func() { sim.Faults().DuplicateNextAllocate(0) })
		d := deployment(ns, "dup", 1, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		var fw v2.Firewall
		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(1))
			fw = fws[0]
			g.Expect(fw.Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			machines := allocatedIn(ns)
			g.Expect(machines).To(HaveLen(1))
			g.Expect(fw.Status.MachineStatus).NotTo(BeNil())
			g.Expect(machines[0].ID).To(Equal(fw.Status.MachineStatus.MachineID))
		}).Should(Succeed())
		events := timeline(fw.Name)
		Expect(countEvents(events, metalsim.TimelineAllocated)[fw.Name]).To(Equal(2), "the injected duplicate")
		Expect(countEvents(events, metalsim.TimelineFreed)[fw.Name]).To(Equal(1), "the duplicate is freed")
		Eventually(func(g Gomega) []string { return eventReasons(g, ns) }).Should(ContainElement("FreedDuplicate"))
	})
})
