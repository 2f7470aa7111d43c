package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/testenv"
)

// failingKernel rejects every transaction, like a kernel refusing the ruleset.
func failingKernel() *nft.FakeKernel {
	return &nft.FakeKernel{Fail: errors.New("netlink transaction: Could not process rule: invalid argument")}
}

// The whole agent against a real API server (seed and workload cluster in one): --once reads
// the Firewall from the seed, applies, configures the distance and reports into the
// Firewall's status and the FirewallMonitor; an agent whose apply fails reports that and
// leaves observedGeneration at the generation whose rules are applied.
func TestAgentReportsToSeedAndMonitor(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest")
	}
	env, restCfg, err := testenv.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(restCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}

	fw := &v2.Firewall{
		ObjectMeta: metav1.ObjectMeta{Name: "fw-1", Namespace: "default"},
		Distance:   2,
		Spec: v2.FirewallSpec{Size: "n1-medium-x86", Image: "firewall-ubuntu-3.0", Partition: "partition-a",
			Project: "00000000-0000-0000-0000-000000000001", Networks: []string{"internet"}, InternalPrefixes: []string{"10.0.0.0/8"}},
	}
	if err := c.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	asn, typ, id := int64(4200003073), "privateprimaryunshared", "tenant"
	fw.Status.FirewallNetworks = []v2.FirewallNetwork{{NetworkID: &id, NetworkType: &typ, ASN: &asn, Prefixes: []string{"10.1.0.0/16"}}}
	if err := c.Status().Update(ctx, fw); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v2.FirewallShootNamespace}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &v2.FirewallMonitor{ObjectMeta: metav1.ObjectMeta{Name: "fw-1", Namespace: v2.FirewallShootNamespace}, Size: "n1-medium-x86"}); err != nil {
		t.Fatal(err)
	}

	eveFile, err := filepath.Abs("ids/testdata/eve.json") // recorded suricata lines
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
name: fw-1
sources:
  seed: {kubeconfig: %[1]s, namespace: default}
  shoot: {kubeconfig: %[1]s}
controllers:
  firewall: {source: seed}
  monitor: {source: shoot}
nftables: {ruleFile: %[2]s/rules.v4}
distance: {frrFile: %[2]s/frr/distance.conf}
reporting: {interval: 1s}
# The DNS proxy would listen on port 53 of the host; test/netns covers it in namespaces.
dns: {enabled: false}
ids: {eveFile: %[3]s}
metrics: {address: "127.0.0.1:0"}
host: {ssh: {authorizedKeysFile: "-"}, egressStateFile: %[2]s/egress.json}
`, kubeconfig, dir, eveFile)))
	if err != nil {
		t.Fatal(err)
	}
	run := func(kernel nft.Kernel) error {
		a, err := NewWith(cfg, nil, kernel)
		if err != nil {
			t.Fatal(err)
		}
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err = a.Once(octx, 20*time.Second)
		return err
	}

	if err := run(&nft.FakeKernel{}); err != nil {
		t.Fatal(err)
	}
	var got v2.Firewall
	if err := c.Get(ctx, client.ObjectKeyFromObject(fw), &got); err != nil {
		t.Fatal(err)
	}
	gen1 := got.Generation
	cs := got.Status.ControllerStatus
	// The distance is reported once FRR runs it: with vtysh installed but no FRR daemon
	// running here, it stays unconfirmed (0); without vtysh it is written unchecked.
	_, vtyshErr := exec.LookPath("vtysh")
	frrRunning := vtyshErr == nil && exec.Command("vtysh", "-c", "show version").Run() == nil
	wantDistance := v2.FirewallDistance(2)
	if vtyshErr == nil && !frrRunning {
		wantDistance = 0
	}
	if cs == nil || cs.RulesApplied == nil || !*cs.RulesApplied || cs.ObservedGeneration != gen1 || cs.ActualDistance != wantDistance ||
		cs.Updated.IsZero() || cs.SeedUpdated.IsZero() || len(got.Status.FirewallNetworks) != 1 {
		t.Fatalf("status after --once: %+v", got.Status)
	}
	if vtyshErr == nil && (cs.DistanceSupported == nil || !*cs.DistanceSupported) {
		t.Errorf("FRR is installed but distanceSupported is %v", cs.DistanceSupported)
	}
	frr, _ := os.ReadFile(filepath.Join(dir, "frr", "distance.conf"))
	if !strings.Contains(string(frr), "set as-path prepend 4200003073 4200003073\n") {
		t.Errorf("distance fragment:\n%s", frr)
	}
	if cs.Stats == nil || cs.Stats.IDSStats["vrf104009"].Packets != 4997276 {
		t.Errorf("seed stats (kubectl describe fw): %+v", cs.Stats)
	}
	var mon v2.FirewallMonitor
	if err := c.Get(ctx, client.ObjectKey{Namespace: v2.FirewallShootNamespace, Name: "fw-1"}, &mon); err != nil {
		t.Fatal(err)
	}
	if ms := mon.ControllerStatus; ms == nil || ms.Stats == nil || ms.Stats.IDSStats["vrf104009"].Drop != 1992 {
		t.Errorf("monitor stats (kubectl describe fwmon): %+v", ms)
	}
	if ms := mon.ControllerStatus; ms == nil || ms.RulesApplied == nil || !*ms.RulesApplied || ms.Distance != wantDistance || ms.ObservedGeneration != gen1 || mon.Size != "n1-medium-x86" {
		t.Fatalf("monitor after --once: %+v", mon)
	}

	// A new spec whose rules the kernel rejects: not applied, generation stays.
	got.Spec.InternalPrefixes = []string{"10.0.0.0/8", "fd00::/8"}
	if err := c.Update(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if err := run(failingKernel()); err == nil {
		t.Fatal("a failing apply succeeded")
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(fw), &got); err != nil {
		t.Fatal(err)
	}
	cs = got.Status.ControllerStatus
	if got.Generation == gen1 || cs.RulesApplied == nil || *cs.RulesApplied || cs.ObservedGeneration != gen1 || !strings.Contains(cs.Message, "Could not process rule") {
		t.Fatalf("status after a failed apply (generation %d): %+v", got.Generation, cs)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: v2.FirewallShootNamespace, Name: "fw-1"}, &mon); err != nil {
		t.Fatal(err)
	}
	if ms := mon.ControllerStatus; ms.RulesApplied == nil || *ms.RulesApplied || ms.ObservedGeneration != gen1 {
		t.Fatalf("monitor after a failed apply: %+v", ms)
	}

	// Running (not --once): the spec that failed above is applied and reported, and the
	// periodic report keeps lastRun fresh while the rules stay in place.
	a, err := NewWith(cfg, nil, &nft.FakeKernel{})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var firstRun time.Time
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(fw), &got); err != nil {
			t.Fatal(err)
		}
		cs = got.Status.ControllerStatus
		if cs.RulesApplied != nil && *cs.RulesApplied && cs.ObservedGeneration == got.Generation {
			if firstRun.IsZero() {
				firstRun = cs.Updated.Time
			} else if cs.Updated.After(firstRun) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("running agent did not apply and refresh its report: %+v", cs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
