package manager

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

var _ = Describe("two replicas with leader election", func() {
	It("survives the leader being killed mid-roll: the other takes over, nothing duplicated or leaked", func() {
		opts := testOptions()
		sel, err := labels.Parse(ownManagerLabel + "=leader")
		Expect(err).NotTo(HaveOccurred())
		opts.NamespaceSelector = sel
		leaderNS := createNamespace("leader-election", nil)
		elect := func(id string) func(*ctrl.Options) {
			return func(o *ctrl.Options) {
				o.LeaderElection = true
				o.LeaderElectionID = "palisade-test-leader"
				o.LeaderElectionNamespace = leaderNS
				o.LeaseDuration = ptr.To(4 * time.Second)
				o.RenewDeadline = ptr.To(3 * time.Second)
				o.RetryPeriod = ptr.To(500 * time.Millisecond)
				// A killed leader does not hand over: the other waits for the lease to expire.
				o.LeaderElectionReleaseOnCancel = false
			}
		}
		start := func(id string) (ctrl.Manager, func(), <-chan struct{}) {
			mgr, stop := startManagerWith(opts, metalClient, elect(id))
			return mgr, stop, mgr.Elected()
		}
		mgrA, stopA, electedA := start("a")
		DeferCleanup(stopA)
		mgrB, stopB, electedB := start("b")
		DeferCleanup(stopB)

		ns := newOwnNamespace("leader", "leader", mgrA, mgrB)
		d := deployment(ns, "leader", 2, metalsim.DefaultImage, noAgent)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		old := waitAvailable(d, 2)

		var leaderStop, followerStop func()
		var followerElected <-chan struct{}
		select {
		case <-electedA:
			leaderStop, followerStop, followerElected = stopA, stopB, electedB
		case <-electedB:
			leaderStop, followerStop, followerElected = stopB, stopA, electedA
		}
		_ = followerStop
		Consistently(followerElected, time.Second).ShouldNot(BeClosed(), "one leader at a time")

		setImage(d, newImage)
		Eventually(func() int { return len(allocatedIn(ns)) }).Should(BeNumerically(">", 2), "the roll is under way")
		leaderStop()
		Eventually(followerElected, 30*time.Second).Should(BeClosed(), "the other replica takes over")

		Eventually(func(g Gomega) {
			fws := firewallsIn(g, ns)
			g.Expect(fws).To(HaveLen(2))
			for _, fw := range fws {
				g.Expect(fw.Name).NotTo(BeElementOf(old[0].Name, old[1].Name))
				g.Expect(fw.Spec.Image).To(Equal(newImage))
				g.Expect(fw.Status.Phase).To(Equal(v2.FirewallPhaseRunning))
			}
			g.Expect(setsIn(g, ns)).To(HaveLen(1))
			g.Expect(conditionTrue(getDeployment(g, d).Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
			g.Expect(allocatedIn(ns)).To(HaveLen(2))
		}, 90*time.Second).Should(Succeed())
		Consistently(func() int { return len(allocatedIn(ns)) }, 2*time.Second, 250*time.Millisecond).Should(Equal(2))

		allocated, freed := countEvents(timeline("leader-"), metalsim.TimelineAllocated), countEvents(timeline("leader-"), metalsim.TimelineFreed)
		Expect(allocated).To(HaveLen(4), "two old and two new machines")
		for name, n := range allocated {
			Expect(n).To(Equal(1), name+" allocated once")
		}
		for _, fw := range old {
			Expect(freed[fw.Name]).To(Equal(1), fw.Name+" freed")
		}
	})
})

var _ = manager.DefaultOptions
