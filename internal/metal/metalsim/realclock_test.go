package metalsim_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

func fastConfig() metalsim.Config {
	cfg := metalsim.DefaultConfig()
	cfg.Provisioning.Installing.Duration = 20 * time.Millisecond
	cfg.Provisioning.BootingNewKernel.Duration = 20 * time.Millisecond
	cfg.Provisioning.ReclaimDelay.Duration = 10 * time.Millisecond
	cfg.Provisioning.ReclaimStep.Duration = 10 * time.Millisecond
	return cfg
}

// With the real clock the lazy lifecycle progresses on its own; this is how
// envtest controller tests use the simulator.
func TestRealClockProvisioning(t *testing.T) {
	sim := metalsim.New(fastConfig())
	url, stop, err := sim.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := metal.New(metal.Config{URL: url, HMACKey: "metal-edit-key"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fw, err := c.AllocateFirewall(ctx, firewallRequest("fw-real"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.WaitForEvent(ctx, "fw-real", metal.EventPhonedHome); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetFirewall(ctx, fw.ID)
	if err != nil || lastEvent(got) != metal.EventPhonedHome || got.Liveliness != metal.LivelinessAlive {
		t.Fatalf("GetFirewall = %v, %v", got, err)
	}
}

// Many clients allocating, finding and freeing at once: the race detector
// watches the simulator, and no machine is ever handed out twice.
func TestConcurrentClients(t *testing.T) {
	sim := metalsim.New(fastConfig())
	url, stop, err := sim.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := metal.New(metal.Config{URL: url, HMACKey: "metal-edit-key"})
			if err != nil {
				errs <- err
				return
			}
			for i := range 5 {
				name := fmt.Sprintf("fw-%d-%d", w, i)
				fw, err := c.AllocateFirewall(ctx, firewallRequest(name))
				if metal.IsUnprocessable(err) {
					continue // pool momentarily exhausted
				}
				if err != nil {
					errs <- err
					return
				}
				found, err := c.FindFirewalls(ctx, &metal.FirewallFindRequest{AllocationName: name})
				if err != nil || len(found) != 1 || found[0].ID != fw.ID {
					errs <- fmt.Errorf("%s: find returned %d (%v)", name, len(found), err)
					return
				}
				_ = sim.Machines()
				if _, err := c.FreeMachine(ctx, fw.ID); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Each allocation must have hit a machine nobody else held at that time.
	holder := map[string]string{}
	for _, ev := range sim.Timeline() {
		switch ev.Kind {
		case metalsim.TimelineAllocated:
			if h, busy := holder[ev.MachineID]; busy {
				t.Fatalf("machine %s allocated to %s while held by %s", ev.MachineID, ev.Hostname, h)
			}
			holder[ev.MachineID] = ev.Hostname
		case metalsim.TimelineFreed:
			delete(holder, ev.MachineID)
		}
	}
	if sim.RequestCount(metal.OpFirewallAllocate) != 40 {
		t.Errorf("allocate count = %d, want 40", sim.RequestCount(metal.OpFirewallAllocate))
	}
}
