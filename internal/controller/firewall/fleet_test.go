package firewall

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

func fleetFixture(t *testing.T) (*metalsim.Simulator, metal.Client, *Fleet) {
	t.Helper()
	return fleetFixtureWith(t, metalsim.DefaultConfig())
}

func fleetFixtureWith(t *testing.T, cfg metalsim.Config) (*metalsim.Simulator, metal.Client, *Fleet) {
	t.Helper()
	sim := metalsim.New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	c, err := metal.New(metal.Config{URL: srv.URL, HMACKey: "metal-admin-key", HMACAuthType: metal.AuthTypeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	return sim, c, NewFleet(c, nil)
}

func fleetFirewall(namespace, name string) *v2.Firewall {
	return &v2.Firewall{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       v2.FirewallSpec{Project: metalsim.DefaultProject, Partition: metalsim.DefaultPartition},
	}
}

func allocateFor(t *testing.T, c metal.Client, fw *v2.Firewall) *metal.FirewallResponse {
	t.Helper()
	auto := true
	m, err := c.AllocateFirewall(context.Background(), &metal.FirewallCreateRequest{
		Name: fw.Name, Hostname: fw.Name, ProjectID: fw.Spec.Project, PartitionID: fw.Spec.Partition,
		SizeID: metalsim.DefaultSize, ImageID: metalsim.DefaultImage, SSHPubKeys: []string{},
		Tags: []string{v2.ManagedByTag + "=" + v2.ManagedByValue, v2.NamespaceTag + "=" + fw.Namespace},
		Networks: []metal.MachineAllocationNetwork{
			{NetworkID: metalsim.DefaultExternalNetwork, AutoAcquire: &auto},
			{NetworkID: metalsim.DefaultPrivateNetwork, AutoAcquire: &auto},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFleetBatchesAndRefreshesOneFirewall(t *testing.T) {
	ctx := context.Background()
	sim, c, fleet := fleetFixture(t)
	a, b, other := fleetFirewall("ns-a", "fw-a"), fleetFirewall("ns-a", "fw-b"), fleetFirewall("ns-b", "fw-a")
	finds := func() int { return sim.RequestCount(metal.OpFirewallFind) }

	if got, err := fleet.Lookup(ctx, a, time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("empty partition: got %v, %v", got, err)
	}
	if _, err := fleet.Lookup(ctx, b, time.Hour); err != nil || finds() != 1 {
		t.Fatalf("a second firewall of the partition must use the cached find, finds = %d, err %v", finds(), err)
	}

	m := allocateFor(t, c, a)
	allocateFor(t, c, other) // same name, other namespace
	if got, _ := fleet.Lookup(ctx, a, time.Hour); len(got) != 0 {
		t.Fatalf("cached data predates the allocation, got %d machines", len(got))
	}

	got, err := fleet.Refresh(ctx, a)
	if err != nil || len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("Refresh: got %v, %v; want machine %s", got, err, m.ID)
	}
	before := finds()
	if got, _ := fleet.Lookup(ctx, a, time.Hour); len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("after Refresh the cached lookup must see the machine, got %v", got)
	}
	if got, _ := fleet.Lookup(ctx, other, time.Hour); len(got) != 0 {
		t.Fatalf("the other namespace's firewall must not see ns-a's machine from the cache, got %v", got)
	}
	if finds() != before {
		t.Fatalf("cached lookups made %d requests", finds()-before)
	}

	fleet.Store(a) // freed
	if got, _ := fleet.Lookup(ctx, a, time.Hour); len(got) != 0 {
		t.Fatalf("after Store with no machines the firewall has none, got %v", got)
	}
	fleet.Store(b, m)
	if got, _ := fleet.Lookup(ctx, b, time.Hour); len(got) != 0 {
		t.Fatalf("Store keeps only the firewall's own machines, got %v", got)
	}

	// A fresh full lookup sees everything again.
	if got, _ := fleet.Lookup(ctx, a, 0); len(got) != 1 {
		t.Fatalf("maxAge 0 must fetch afresh, got %v", got)
	}
}

func TestFleetStoreWithoutCacheIsNoop(t *testing.T) {
	ctx := context.Background()
	sim, c, fleet := fleetFixture(t)
	fw := fleetFirewall("ns-a", "fw-a")
	m := allocateFor(t, c, fw)
	fleet.Store(fw) // nothing cached yet: must not pretend the partition is empty
	got, err := fleet.Lookup(ctx, fw, time.Hour)
	if err != nil || len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("got %v, %v; want machine %s from a first find", got, err, m.ID)
	}
	if n := sim.RequestCount(metal.OpFirewallFind); n != 1 {
		t.Fatalf("finds = %d, want 1", n)
	}
}

// A fetch for one firewall announces the other firewalls whose machine changed, and only those.
func TestFleetAnnouncesChangedMachines(t *testing.T) {
	ctx := context.Background()
	cfg := metalsim.DefaultConfig()
	cfg.Provisioning.Installing = metalsim.Duration{Duration: time.Hour} // machines stand still
	_, c, fleet := fleetFixtureWith(t, cfg)
	a, b := fleetFirewall("ns-a", "fw-a"), fleetFirewall("ns-b", "fw-b")
	allocateFor(t, c, a)
	if _, err := fleet.Lookup(ctx, a, 0); err != nil {
		t.Fatal(err)
	}
	drain := func() []string {
		var got []string
		for {
			select {
			case e := <-fleet.changes:
				got = append(got, e.Object.GetNamespace()+"/"+e.Object.GetName())
			default:
				return got
			}
		}
	}
	if got := drain(); len(got) != 0 {
		t.Fatalf("the first fetch announced %v", got)
	}

	allocateFor(t, c, b) // a new machine for b appears in the partition
	if _, err := fleet.Lookup(ctx, a, 0); err != nil {
		t.Fatal(err)
	}
	if got := drain(); len(got) != 1 || got[0] != "ns-b/fw-b" {
		t.Fatalf("announced %v, want [ns-b/fw-b]", got)
	}
	if _, err := fleet.Lookup(ctx, a, 0); err != nil {
		t.Fatal(err)
	}
	if got := drain(); len(got) != 0 {
		t.Errorf("an unchanged partition announced %v", got)
	}
}

// A watched partition is fetched by the fleet's own poller: the phone-home reaches its firewall
// through the fan-out, without the firewall looking itself, and the poller stops with its time.
func TestFleetWatchHandsThePhoneHomeToItsFirewall(t *testing.T) {
	ctx := context.Background()
	cfg := metalsim.DefaultConfig()
	cfg.Provisioning.Installing = metalsim.Duration{Duration: 300 * time.Millisecond}
	cfg.Provisioning.BootingNewKernel = metalsim.Duration{Duration: 100 * time.Millisecond}
	_, c, fleet := fleetFixtureWith(t, cfg)
	fw := fleetFirewall("ns-a", "fw-a")
	allocateFor(t, c, fw)
	if _, err := fleet.Lookup(ctx, fw, 0); err != nil {
		t.Fatal(err)
	}
	fleet.Watch(fw, 50*time.Millisecond, 5*time.Second)
	deadline := time.After(30 * time.Second)
	for announced := false; !announced; {
		select {
		case e := <-fleet.changes:
			if e.Object.GetName() != fw.Name || e.Object.GetNamespace() != fw.Namespace {
				t.Fatalf("announced %s/%s, want %s/%s", e.Object.GetNamespace(), e.Object.GetName(), fw.Namespace, fw.Name)
			}
			machines, err := fleet.Lookup(ctx, fw, time.Hour) // the poller's data, no fetch
			if err != nil || len(machines) != 1 {
				t.Fatalf("lookup: %v, %v", machines, err)
			}
			announced = len(machines[0].Events.Log) > 0 && machines[0].Events.Log[0].Event == metal.EventPhonedHome
		case <-deadline:
			t.Fatal("the phone-home was not announced")
		}
	}
	if got := fleet.Provisioning(fw); got <= 0 {
		t.Errorf("provisioning time not learned from the phone-home: %s", got)
	}
	fleet.Watch(fw, 50*time.Millisecond, 100*time.Millisecond) // shorter: keeps the longer time
	fleet.mu.Lock()
	w := fleet.watched[fleetKey{project: fw.Spec.Project, partition: fw.Spec.Partition}]
	fleet.mu.Unlock()
	if w == nil || time.Until(w.until) < time.Second {
		t.Fatalf("a shorter watch cut the running one short: %+v", w)
	}
}
