package report

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/drift"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/runner"
	"github.com/palisade-fw/palisade/internal/testenv"
)

func ptr[T any](v T) *T { return &v }

// One API server plays seed and workload cluster; the agent's sinks write the seed
// Firewall's status and the FirewallMonitor. Only controllerStatus may change, "connected"
// needs an applied ruleset, and a failed apply never advances observedGeneration.
func TestReportsToSeedAndMonitor(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest")
	}
	env, cfg, err := testenv.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	fw := &v2.Firewall{
		ObjectMeta: metav1.ObjectMeta{Name: "fw-1", Namespace: "default"},
		Distance:   3,
		Spec: v2.FirewallSpec{Size: "n1-medium-x86", Image: "firewall-ubuntu-3.0", Partition: "partition-a",
			Project: "00000000-0000-0000-0000-000000000001", Networks: []string{"internet"}},
	}
	if err := c.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	// Status fields the manager owns; the agent must leave them alone.
	fw.Status.FirewallNetworks = []v2.FirewallNetwork{{NetworkID: ptr("internet"), ASN: ptr[int64](4200003073), NetworkType: ptr("external")}}
	fw.Status.Conditions = []metav1.Condition{{Type: "Created", Status: metav1.ConditionTrue, Reason: "Created", LastTransitionTime: metav1.Now()}}
	fw.Status.ObservedGeneration = fw.Generation
	if err := c.Status().Update(ctx, fw); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v2.FirewallShootNamespace}}); err != nil {
		t.Fatal(err)
	}
	mon := &v2.FirewallMonitor{ObjectMeta: metav1.ObjectMeta{Name: "fw-1", Namespace: v2.FirewallShootNamespace},
		Size: "n1-medium-x86", Image: "firewall-ubuntu-3.0", Networks: []string{"internet"},
		ControllerStatus: &v2.ControllerStatus{NftablesExporterVersion: "stale", Stats: &v2.FirewallStats{
			RuleStats: v2.RuleStatsByAction{ActionAccept: {"cwnp-deleted": {Counter: v2.Counter{Bytes: 1}}}}}}}
	if err := c.Create(ctx, mon); err != nil {
		t.Fatal(err)
	}

	stats := &v2.FirewallStats{
		RuleStats:   v2.RuleStatsByAction{ActionAccept: {"cwnp-abc-firewall/web": {Counter: v2.Counter{Bytes: 100, Packets: 2}}}, ActionDrop: {}, ActionOther: {}},
		DeviceStats: v2.DeviceStatsByDevice{"external": {InBytes: 5, OutBytes: 6, TotalBytes: 11}},
		IDSStats:    v2.IDSStatsByDevice{"vrf104009": {Drop: 1992, Packets: 4997276}},
	}
	frrFile := filepath.Join(t.TempDir(), "distance.conf")
	t0 := time.Now().Truncate(time.Second)
	statsFn := func(context.Context) (*v2.FirewallStats, error) { return stats, nil }
	// The seed write is the seed contact: it stamps lastRunAgainstSeed with its own time.
	seed := &SeedFirewall{Client: c, Namespace: "default", Name: "fw-1", Stats: statsFn, Now: func() time.Time { return t0 }}
	monitor := &Monitor{Client: c, Name: "fw-1", Stats: statsFn}
	hub := NewHub(HubOptions{Interval: time.Hour, FromSeed: true, Sinks: []Sink{seed, monitor},
		Distance: &FRR{File: frrFile, RouteMap: "palisade-distance", Checker: "-"}})

	before := getFirewall(t, c)
	gen1 := before.Generation
	hub.Synced(ctx, runner.SyncResult{Firewall: model.Firewall{Generation: gen1, Distance: 3, ASN: 4200003073}, Applied: true, Time: t0})
	hub.WriteNow(ctx)

	after := getFirewall(t, c)
	cs := after.Status.ControllerStatus
	if cs == nil || cs.RulesApplied == nil || !*cs.RulesApplied || cs.ObservedGeneration != gen1 || cs.ActualDistance != 3 ||
		cs.ActualVersion != Version || cs.Message != "" || !cs.Updated.Time.Equal(t0) || !cs.SeedUpdated.Time.Equal(t0) {
		t.Fatalf("controllerStatus after a successful apply: %+v", cs)
	}
	if !reflect.DeepEqual(cs.Stats, stats) || seed.LastContact() != t0 {
		t.Errorf("seed stats (describe fw shows rules, devices, IDS): %+v, contact %v", cs.Stats, seed.LastContact())
	}
	if cs.DistanceSupported == nil || *cs.DistanceSupported {
		t.Errorf("without FRR's checker distanceSupported must be false: %v", cs.DistanceSupported)
	}
	assertOnlyControllerStatusChanged(t, before, after)
	if data, _ := os.ReadFile(frrFile); len(data) == 0 {
		t.Error("distance fragment not written")
	}

	gotMon := getMonitor(t, c)
	ms := gotMon.ControllerStatus
	if ms == nil || ms.RulesApplied == nil || !*ms.RulesApplied || ms.ObservedGeneration != gen1 || ms.Distance != 3 || ms.DistanceSupported ||
		ms.ControllerVersion != Version || !ms.Updated.Time.Equal(t0) || !reflect.DeepEqual(ms.Stats, stats) {
		t.Fatalf("monitor controllerStatus: %+v", ms)
	}
	if ms.NftablesExporterVersion != "" {
		t.Error("controllerStatus was merged instead of replaced (stale fields survive)")
	}
	if gotMon.Size != mon.Size || gotMon.Image != mon.Image || !slices.Equal(gotMon.Networks, mon.Networks) {
		t.Errorf("monitor fields outside controllerStatus changed: %+v", gotMon)
	}

	// Nothing changed: no write at all.
	rvFW, rvMon := after.ResourceVersion, gotMon.ResourceVersion
	hub.Synced(ctx, runner.SyncResult{Firewall: model.Firewall{Generation: gen1, Distance: 3, ASN: 4200003073}, Applied: true, Time: t0.Add(time.Second)})
	hub.write(ctx, false)
	if getFirewall(t, c).ResourceVersion != rvFW || getMonitor(t, c).ResourceVersion != rvMon {
		t.Error("an unchanged state was written before the interval")
	}

	// A new spec whose ruleset fails to apply: not connected, generation not advanced.
	after.Spec.Networks = []string{"internet", "tenant-network-1"}
	if err := c.Update(ctx, after); err != nil {
		t.Fatal(err)
	}
	gen2 := getFirewall(t, c).Generation
	if gen2 == gen1 {
		t.Fatal("generation did not change")
	}
	hub.Synced(ctx, runner.SyncResult{Firewall: model.Firewall{Generation: gen2, Distance: 3, ASN: 4200003073}, Err: errors.New("nft: Error: syntax error"), Time: t0.Add(2 * time.Second)})
	hub.write(ctx, false)
	failed := getFirewall(t, c)
	cs = failed.Status.ControllerStatus
	if cs.RulesApplied == nil || *cs.RulesApplied || cs.ObservedGeneration != gen1 || cs.Message != "nft: Error: syntax error" ||
		!cs.Updated.Time.Equal(t0.Add(time.Second)) { // the last sync that had the rules applied
		t.Fatalf("controllerStatus after a failed apply: %+v", cs)
	}
	assertOnlyControllerStatusChanged(t, before, failed)
	if ms := getMonitor(t, c).ControllerStatus; ms.RulesApplied == nil || *ms.RulesApplied || ms.ObservedGeneration != gen1 || ms.Message == "" {
		t.Fatalf("monitor after a failed apply: %+v", ms)
	}

	// A host problem is part of the message until it is cleared.
	hub.Note("selfUpdate", "refusing v2: unsigned")
	hub.write(ctx, false)
	if cs := getFirewall(t, c).Status.ControllerStatus; cs.Message != "nft: Error: syntax error; selfUpdate: refusing v2: unsigned" {
		t.Errorf("message with note: %q", cs.Message)
	}
	hub.Note("selfUpdate", "")

	// The retry succeeds: generation advances, message cleared.
	t3 := t0.Add(3 * time.Second)
	hub.Synced(ctx, runner.SyncResult{Firewall: model.Firewall{Generation: gen2, Distance: 3, ASN: 4200003073}, Applied: true, Time: t3})
	hub.write(ctx, false)
	cs = getFirewall(t, c).Status.ControllerStatus
	if !*cs.RulesApplied || cs.ObservedGeneration != gen2 || cs.Message != "" || !cs.Updated.Time.Equal(t3) {
		t.Fatalf("controllerStatus after recovery: %+v", cs)
	}

	// Drift (internal/agent/drift) is the RulesetInSync condition in both reports, and
	// clears after the repair.
	drifted := drift.Status{Checked: t3, Known: true, Repairing: true,
		Differences: []drift.Difference{{Kind: "chain", Name: "forward", What: "0 rules, expected 17"}}}
	hub.SetCondition(drift.Condition(drifted))
	hub.write(ctx, false)
	for _, conds := range [][]metav1.Condition{getFirewall(t, c).Status.ControllerStatus.Conditions, getMonitor(t, c).ControllerStatus.Conditions} {
		cond := apimeta.FindStatusCondition(conds, drift.ConditionRulesetInSync)
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != drift.ReasonDrifted ||
			!strings.Contains(cond.Message, "chain forward: 0 rules, expected 17") || cond.LastTransitionTime.IsZero() {
			t.Fatalf("drift condition: %+v", conds)
		}
	}
	hub.SetCondition(drift.Condition(drift.Status{Checked: t3, Known: true, LastRepair: drift.Summary(drifted.Differences)}))
	hub.write(ctx, false)
	for _, conds := range [][]metav1.Condition{getFirewall(t, c).Status.ControllerStatus.Conditions, getMonitor(t, c).ControllerStatus.Conditions} {
		if cond := apimeta.FindStatusCondition(conds, drift.ConditionRulesetInSync); cond == nil || cond.Status != metav1.ConditionTrue ||
			cond.Reason != drift.ReasonInSync || !strings.Contains(cond.Message, "last repaired: chain forward") {
			t.Fatalf("condition after the repair: %+v", conds)
		}
	}
	assertOnlyControllerStatusChanged(t, before, getFirewall(t, c))
}

func getFirewall(t *testing.T, c client.Client) *v2.Firewall {
	t.Helper()
	var fw v2.Firewall
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "fw-1"}, &fw); err != nil {
		t.Fatal(err)
	}
	return &fw
}

func getMonitor(t *testing.T, c client.Client) *v2.FirewallMonitor {
	t.Helper()
	var m v2.FirewallMonitor
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: v2.FirewallShootNamespace, Name: "fw-1"}, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// assertOnlyControllerStatusChanged compares the statuses without controllerStatus.
func assertOnlyControllerStatusChanged(t *testing.T, before, after *v2.Firewall) {
	t.Helper()
	b, a := before.Status.DeepCopy(), after.Status.DeepCopy()
	b.ControllerStatus, a.ControllerStatus = nil, nil
	bj, _ := json.Marshal(b)
	aj, _ := json.Marshal(a)
	if string(bj) != string(aj) {
		t.Errorf("status outside controllerStatus changed:\nbefore %s\nafter  %s", bj, aj)
	}
}
