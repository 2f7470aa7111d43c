package metalsim_test

import (
	"context"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

// A slow allocate completes server-side after the client gave up: the find during the delay
// shows nothing, the one after shows the machine.
func TestSlowAllocateCompletesAfterTheClientGaveUp(t *testing.T) {
	sim := metalsim.New(fastConfig())
	url, stop, err := sim.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := metal.New(metal.Config{URL: url, HMACKey: "metal-edit-key", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sim.Faults().SlowAllocate(1, time.Second)
	if _, err := c.AllocateFirewall(context.Background(), firewallRequest("fw-slow")); err == nil {
		t.Fatal("the client should have timed out")
	}
	find := func() int {
		got, err := c.FindFirewalls(context.Background(), &metal.FirewallFindRequest{AllocationName: "fw-slow"})
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	if n := find(); n != 0 {
		t.Fatalf("during the server-side delay find shows %d machines, want 0", n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for find() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow allocation never completed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := find(); n != 1 {
		t.Fatalf("find shows %d machines, want 1", n)
	}
	// Only the next allocation was slow.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c2, _ := metal.New(metal.Config{URL: url, HMACKey: "metal-edit-key"})
	if _, err := c2.AllocateFirewall(ctx, firewallRequest("fw-fast")); err != nil {
		t.Fatal(err)
	}
}

// A client that waits long enough gets the slow allocation's answer.
func TestSlowAllocateAnswersAPatientClient(t *testing.T) {
	sim := metalsim.New(fastConfig())
	url, stop, err := sim.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, _ := metal.New(metal.Config{URL: url, HMACKey: "metal-edit-key"})
	sim.Faults().SlowAllocate(1, 100*time.Millisecond)
	fw, err := c.AllocateFirewall(context.Background(), firewallRequest("fw-patient"))
	if err != nil || fw.Allocation == nil || fw.Allocation.Name != "fw-patient" {
		t.Fatalf("AllocateFirewall = %v, %v", fw, err)
	}
	if got := sim.RequestCount(metal.OpFirewallAllocate); got != 1 {
		t.Fatalf("%d allocate requests, want 1", got)
	}
}

// A free that fails transiently is the existing FailNext: the n-th+1 attempt goes through.
func TestFreeFailsTransiently(t *testing.T) {
	sim := metalsim.New(fastConfig())
	url, stop, err := sim.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, _ := metal.New(metal.Config{URL: url, HMACKey: "metal-edit-key", Retry: metal.RetryConfig{MaxAttempts: 1}})
	ctx := context.Background()
	fw, err := c.AllocateFirewall(ctx, firewallRequest("fw-free"))
	if err != nil {
		t.Fatal(err)
	}
	sim.Faults().FailNext(metal.OpMachineFree, 2, 409)
	for i := 0; i < 2; i++ {
		if _, err := c.FreeMachine(ctx, fw.ID); !metal.IsConflict(err) {
			t.Fatalf("free %d: %v, want 409", i, err)
		}
	}
	if _, err := c.FreeMachine(ctx, fw.ID); err != nil {
		t.Fatal(err)
	}
	if snap, _ := sim.Machine(fw.ID); snap.Allocation != nil {
		t.Fatal("machine still allocated")
	}
}

var _ = metalsim.DefaultConfig
