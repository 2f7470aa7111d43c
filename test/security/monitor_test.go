package security

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// monitorOf waits for the firewall's FirewallMonitor (single-cluster mode: namespace firewall).
func monitorOf(g Gomega, fw *v2.Firewall) *v2.FirewallMonitor {
	mon := &v2.FirewallMonitor{}
	g.Eventually(func() error {
		return admin.Get(ctx, client.ObjectKey{Namespace: monitorNamespace, Name: fw.Name}, mon)
	}).Should(Succeed())
	return mon
}

// waitForEvent waits for an event of reason about the firewall: the manager's proof that it
// read what the test wrote, so the assertions after it need no timing.
func waitForEvent(g Gomega, fw *v2.Firewall, reason string) {
	g.Eventually(func(g Gomega) {
		var list eventsv1.EventList
		g.Expect(admin.List(ctx, &list, client.InNamespace(fw.Namespace))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.Regarding.Name == fw.Name {
				reasons = append(reasons, e.Reason)
			}
		}
		g.Expect(reasons).To(ContainElement(reason))
	}).Should(Succeed())
}

func conditionStatuses(fw *v2.Firewall) map[string]metav1.ConditionStatus {
	out := map[string]metav1.ConditionStatus{}
	for _, c := range fw.Status.Conditions {
		out[c.Type] = c.Status
	}
	return out
}

// A tenant who can write the FirewallMonitor cannot make a firewall look healthy (or sick) to
// the seed with a report from the future, whether or not the agent reports to the seed.
func TestForgedMonitorChangesNoReadiness(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(90 * time.Second)
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)

	seedReported := deployment("seed-reported")
	silent := deployment("silent")
	g.Expect(admin.Create(ctx, seedReported)).To(Succeed())
	g.Expect(admin.Create(ctx, silent)).To(Succeed())
	reported := firewallsOf(g, seedReported, 1)[0]
	quiet := firewallsOf(g, silent, 1)[0]

	t.Log("the agent reports to the seed: the firewall becomes Ready")
	applied := true
	g.Eventually(func() error {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(&reported), &reported); err != nil {
			return err
		}
		reported.Status.ControllerStatus = &v2.ControllerConnection{
			ActualVersion: "seed-agent", Updated: metav1.Now(), SeedUpdated: metav1.Now(),
			ActualDistance: reported.Distance, ObservedGeneration: reported.Generation, RulesApplied: &applied,
		}
		return admin.Status().Update(ctx, &reported)
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(&reported), &reported)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(reported.Status.Conditions, v2.ConditionReady)).To(BeTrue())
	}).Should(Succeed())

	for _, fw := range []*v2.Firewall{&reported, &quiet} {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(fw), fw)).To(Succeed())
		before := conditionStatuses(fw)
		var beforeVersion string
		if fw.Status.ControllerStatus != nil {
			beforeVersion = fw.Status.ControllerStatus.ActualVersion
		}

		t.Logf("%s: the tenant writes a report dated an hour ahead into the monitor", fw.Name)
		g.Eventually(func() error {
			mon := monitorOf(g, fw)
			future := metav1.NewTime(time.Now().Add(time.Hour))
			mon.ControllerStatus = &v2.ControllerStatus{
				ControllerVersion: "forged", Updated: future, SeedUpdated: future,
				Distance: fw.Distance, DistanceSupported: true, ObservedGeneration: fw.Generation, RulesApplied: &applied,
			}
			return admin.Update(ctx, mon)
		}).Should(Succeed())
		waitForEvent(g, fw, "MonitorReportRefused")

		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(fw), fw)).To(Succeed())
		g.Expect(conditionStatuses(fw)).To(Equal(before), "%s: conditions changed", fw.Name)
		if fw.Status.ControllerStatus != nil {
			g.Expect(fw.Status.ControllerStatus.ActualVersion).To(Equal(beforeVersion), "%s: the forged report was taken", fw.Name)
		} else {
			g.Expect(beforeVersion).To(BeEmpty())
		}
	}
	g.Expect(meta.IsStatusConditionTrue(quiet.Status.Conditions, v2.ConditionConnected)).To(BeFalse(), "the silent firewall stays not Connected")

	t.Log("what the tenant sees of seed-side conditions carries no seed-side messages")
	mon := monitorOf(g, &quiet)
	for _, c := range mon.Conditions {
		if c.Type == v2.ConditionConnected || c.Type == v2.ConditionSeedConnected || c.Type == v2.ConditionDistance {
			continue
		}
		g.Expect(c.Message).To(HavePrefix("reported by the seed: "), "condition %s", c.Type)
		g.Expect(strings.Contains(c.Message, "metal")).To(BeFalse(), "condition %s", c.Type)
	}
}

// Every roll allocates machines; the tenant may ask for one per interval and firewall.
func TestMonitorRollRequestsAreRateLimited(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(90 * time.Second)
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	deploy := deployment("rolled")
	g.Expect(admin.Create(ctx, deploy)).To(Succeed())
	fw := firewallsOf(g, deploy, 1)[0]
	requestRoll := func() {
		g.Eventually(func(g Gomega) {
			mon := monitorOf(g, &fw)
			g.Expect(mon.Annotations).NotTo(HaveKey(v2.RollSetAnnotation), "the previous request is not consumed yet")
			metav1.SetMetaDataAnnotation(&mon.ObjectMeta, v2.RollSetAnnotation, "true")
			g.Expect(admin.Update(ctx, mon)).To(Succeed())
		}).Should(Succeed())
	}
	sets := func() int {
		var list v2.FirewallSetList
		g.Expect(admin.List(ctx, &list, client.InNamespace(tenantNamespace))).To(Succeed())
		n := 0
		for _, s := range list.Items {
			if metav1.IsControlledBy(&s, deploy) {
				n++
			}
		}
		return n
	}
	g.Eventually(func() error { return admin.Get(ctx, client.ObjectKeyFromObject(deploy), deploy) }).Should(Succeed())

	requestRoll()
	waitForEvent(g, &fw, "RollRequested")
	g.Eventually(sets).Should(Equal(2), "the first request rolls")

	requestRoll()
	waitForEvent(g, &fw, "RollRequestRateLimited")
	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: monitorNamespace, Name: fw.Name}, &v2.FirewallMonitor{})).To(Succeed())
	}).Should(Succeed())
	g.Expect(sets()).To(Equal(2), "the second request within the interval rolls nothing")
}
