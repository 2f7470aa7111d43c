package metalsim_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

func TestInstallProgressionAndHeartbeats(t *testing.T) {
	e := newEnv(t)
	p := e.cfg.Provisioning
	fw := e.allocate("fw-1")

	if got := lastEvent(e.get(fw.ID)); got != metal.EventInstalling {
		t.Fatalf("right after allocate: %q, want Installing", got)
	}
	e.advance(p.Installing.Duration)
	if got := lastEvent(e.get(fw.ID)); got != metal.EventBootingNewKernel {
		t.Fatalf("after installing: %q", got)
	}
	e.advance(p.BootingNewKernel.Duration)
	m := e.get(fw.ID)
	if lastEvent(m) != metal.EventPhonedHome || m.Liveliness != metal.LivelinessAlive || m.Events.CrashLoop {
		t.Fatalf("not ready: %q %q crash=%v", lastEvent(m), m.Liveliness, m.Events.CrashLoop)
	}
	wantLog := []string{metal.EventPhonedHome, metal.EventBootingNewKernel, metal.EventInstalling, metal.EventWaiting}
	for i, ev := range wantLog {
		if m.Events.Log[i].Event != ev {
			t.Fatalf("log[%d] = %q, want %q (newest first)", i, m.Events.Log[i].Event, ev)
		}
	}

	// Heartbeats keep it alive well past DeadAfter without adding log entries
	// (4 pool boot events + 3 install events).
	e.advance(3 * p.DeadAfter.Duration)
	m = e.get(fw.ID)
	if m.Liveliness != metal.LivelinessAlive || len(m.Events.Log) != 7 || lastEvent(m) != metal.EventPhonedHome {
		t.Fatalf("heartbeats: liveliness %q, last %q", m.Liveliness, lastEvent(m))
	}
	if age := e.clock.Now().Sub(m.Events.LastEventTime); age > p.HeartbeatInterval.Duration {
		t.Errorf("last_event_time is %s old, want refreshed by heartbeats", age)
	}

	tl := e.sim.Timeline()
	if len(tl) != 2 || tl[0].Kind != metalsim.TimelineAllocated || tl[1].Kind != metalsim.TimelinePhonedHome ||
		tl[1].Hostname != "fw-1" || !tl[1].Time.After(tl[0].Time) {
		t.Errorf("timeline = %+v", tl)
	}
}

func TestHeartbeatLossMakesLivelinessUnknown(t *testing.T) {
	e := newEnv(t)
	fw := e.allocate("fw-hb")
	if err := e.sim.PhoneHomeNow("fw-hb"); err != nil {
		t.Fatal(err)
	}
	e.sim.Faults().StopHeartbeat("fw-hb")
	e.advance(e.cfg.Provisioning.DeadAfter.Duration)
	if got := e.get(fw.ID).Liveliness; got != metal.LivelinessAlive {
		t.Fatalf("exactly at DeadAfter: %q, want still Alive", got)
	}
	e.advance(time.Second)
	if got := e.get(fw.ID).Liveliness; got != metal.LivelinessUnknown {
		t.Fatalf("allocated machine without heartbeat: %q, want Unknown", got)
	}
	e.sim.Faults().ResumeHeartbeat("fw-hb")
	if got := e.get(fw.ID).Liveliness; got != metal.LivelinessAlive {
		t.Fatalf("after resume: %q", got)
	}

	// A free machine without heartbeat is Dead and cannot be allocated.
	pool := e.sim.Machines()
	var free string
	for _, m := range pool {
		if m.Allocation == nil {
			free = m.ID
			break
		}
	}
	e.sim.Faults().StopHeartbeat(free)
	e.advance(e.cfg.Provisioning.DeadAfter.Duration + time.Second)
	if got := e.get(free).Liveliness; got != metal.LivelinessDead {
		t.Fatalf("free machine without heartbeat: %q, want Dead", got)
	}
}

func TestFreeReclaimsBackToPool(t *testing.T) {
	e := newEnv(t, func(c *metalsim.Config) { c.Machines[0].Count = 1 })
	ctx := context.Background()
	fw := e.allocate("fw-a")
	if _, err := e.edit.AllocateFirewall(ctx, firewallRequest("fw-b")); !metal.IsUnprocessable(err) {
		t.Fatalf("pool of one: second allocate err = %v, want 422", err)
	}
	if _, err := e.edit.FreeMachine(ctx, fw.ID); err != nil {
		t.Fatal(err)
	}
	m := e.get(fw.ID)
	if lastEvent(m) != metal.EventMachineReclaim || m.Events.Log[0].Message != "free machine called" || m.Allocation != nil {
		t.Fatalf("after free: %q %+v", lastEvent(m), m.Events.Log[0])
	}
	if _, err := e.edit.AllocateFirewall(ctx, firewallRequest("fw-b")); !metal.IsUnprocessable(err) {
		t.Fatalf("machine allocatable before reclaim finished: %v", err)
	}
	// Freeing again succeeds, like metal-api.
	if _, err := e.edit.FreeMachine(ctx, fw.ID); err != nil {
		t.Fatalf("second free: %v", err)
	}
	p := e.cfg.Provisioning
	e.advance(p.ReclaimDelay.Duration + 3*p.ReclaimStep.Duration)
	if got := lastEvent(e.get(fw.ID)); got != metal.EventWaiting {
		t.Fatalf("after reclaim: %q, want Waiting", got)
	}
	again := e.allocate("fw-b")
	if again.ID != fw.ID || again.Allocation.AllocationUUID == fw.Allocation.AllocationUUID {
		t.Fatalf("reclaimed machine not reused with a new allocation uuid")
	}
	kinds := []metalsim.TimelineKind{}
	for _, ev := range e.sim.Timeline() {
		kinds = append(kinds, ev.Kind)
	}
	want := []metalsim.TimelineKind{metalsim.TimelineAllocated, metalsim.TimelineFreed, metalsim.TimelineReclaimed, metalsim.TimelineAllocated}
	if !slices.Equal(kinds, want) {
		t.Errorf("timeline kinds = %v, want %v", kinds, want)
	}
}

func TestCrashLoop(t *testing.T) {
	e := newEnv(t)
	e.sim.Faults().CrashLoop("fw-crash") // before allocation: applies by hostname
	fw := e.allocate("fw-crash")
	p := e.cfg.Provisioning
	e.advance(p.Installing.Duration)
	m := e.get(fw.ID)
	if lastEvent(m) != metal.EventCrashed || !m.Events.CrashLoop || m.Events.LastErrorEvent == nil || m.Events.LastErrorEvent.Event != metal.EventCrashed {
		t.Fatalf("no crash: last %q crash_loop %v err %+v", lastEvent(m), m.Events.CrashLoop, m.Events.LastErrorEvent)
	}
	// The retry cycle keeps crash_loop set.
	for range 3 {
		e.advance(3*p.ReclaimStep.Duration + p.Installing.Duration)
		if m := e.get(fw.ID); !m.Events.CrashLoop {
			t.Fatalf("crash_loop cleared during the retry cycle at %q", lastEvent(m))
		}
	}
	e.sim.Faults().StopCrashLoop("fw-crash")
	e.advance(3*p.ReclaimStep.Duration + p.Installing.Duration + p.BootingNewKernel.Duration)
	m = e.get(fw.ID)
	if lastEvent(m) != metal.EventPhonedHome || m.Events.CrashLoop {
		t.Fatalf("recovery: last %q crash_loop %v", lastEvent(m), m.Events.CrashLoop)
	}
}

func TestStallProvisioning(t *testing.T) {
	e := newEnv(t)
	e.sim.Faults().StallProvisioning("fw-stuck")
	fw := e.allocate("fw-stuck")
	e.advance(time.Hour)
	m := e.get(fw.ID)
	if lastEvent(m) != metal.EventInstalling || m.Liveliness != metal.LivelinessAlive {
		t.Fatalf("stalled machine: %q %q, want Installing and Alive", lastEvent(m), m.Liveliness)
	}
	e.sim.Faults().ResumeProvisioning("fw-stuck")
	p := e.cfg.Provisioning
	e.advance(p.Installing.Duration + p.BootingNewKernel.Duration)
	if got := lastEvent(e.get(fw.ID)); got != metal.EventPhonedHome {
		t.Fatalf("after resume: %q", got)
	}
}

func TestFailedReclaim(t *testing.T) {
	e := newEnv(t)
	fw := e.allocate("fw-zombie")
	e.sim.Faults().FailReclaim("fw-zombie")
	if _, err := e.edit.FreeMachine(context.Background(), fw.ID); err != nil {
		t.Fatal(err)
	}
	e.advance(e.cfg.Provisioning.FailedReclaimAfter.Duration + 2*time.Second)
	snap, ok := e.sim.Machine(fw.ID)
	if !ok || !snap.Events.FailedMachineReclaim || snap.Waiting {
		t.Fatalf("failed_machine_reclaim=%v waiting=%v", snap.Events.FailedMachineReclaim, snap.Waiting)
	}
	if tl := e.sim.Timeline(); tl[len(tl)-1].Kind != metalsim.TimelineFailedReclaim {
		t.Errorf("timeline = %+v", tl)
	}
}

func TestVanishedMachineIsGone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fw := e.allocate("fw-gone")
	if len(e.sim.UsedIPs(metalsim.DefaultPrivateNetwork)) != 1 {
		t.Fatal("no ip acquired")
	}
	if err := e.sim.Faults().Vanish("fw-gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.edit.GetFirewall(ctx, fw.ID); !metal.IsNotFound(err) {
		t.Fatalf("GetFirewall = %v, want 404", err)
	}
	found, err := e.edit.FindFirewalls(ctx, &metal.FirewallFindRequest{AllocationName: "fw-gone"})
	if err != nil || len(found) != 0 {
		t.Fatalf("find = %d, %v", len(found), err)
	}
	if ips := e.sim.UsedIPs(metalsim.DefaultPrivateNetwork); len(ips) != 0 {
		t.Fatalf("ips of vanished machine not released: %v", ips)
	}
}

func TestDuplicateAllocation(t *testing.T) {
	e := newEnv(t)
	e.sim.Faults().DuplicateNextAllocate(1)
	e.allocate("fw-dup")
	found, err := e.edit.FindFirewalls(context.Background(), &metal.FirewallFindRequest{AllocationName: "fw-dup", Tags: []string{"cluster.metal-stack.io/id=c1"}})
	if err != nil || len(found) != 2 || found[0].ID == found[1].ID {
		t.Fatalf("find = %d, %v; want two distinct machines", len(found), err)
	}
	ips := e.sim.UsedIPs(metalsim.DefaultPrivateNetwork)
	if len(ips) != 2 || ips[0] == ips[1] {
		t.Fatalf("duplicate shares ips: %v", ips)
	}
}

func TestRebootClearsCrashLoopAndShuffledTagsKeepTheSet(t *testing.T) {
	e := newEnv(t)
	fw := e.allocate("fw-r")
	if err := e.sim.PhoneHomeNow("fw-r"); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.Faults().Reboot("fw-r"); err != nil {
		t.Fatal(err)
	}
	if got := lastEvent(e.get(fw.ID)); got != metal.EventPlannedReboot {
		t.Fatalf("after reboot: %q", got)
	}
	e.advance(e.cfg.Provisioning.BootingNewKernel.Duration)
	if got := lastEvent(e.get(fw.ID)); got != metal.EventPhonedHome {
		t.Fatalf("after reboot recovery: %q", got)
	}

	want := slices.Sorted(slices.Values(e.get(fw.ID).Tags))
	e.sim.Faults().ShuffleTags(true)
	for range 5 {
		if got := slices.Sorted(slices.Values(e.get(fw.ID).Tags)); !slices.Equal(got, want) {
			t.Fatalf("shuffled tags changed the set: %v vs %v", got, want)
		}
	}
}

func TestSnapshotsAreDeepCopies(t *testing.T) {
	e := newEnv(t)
	fw := e.allocate("fw-copy")
	snap, _ := e.sim.Machine(fw.ID)
	snap.Allocation.Hostname = "mutated"
	snap.Tags[0] = "mutated"
	snap.Events.Log[0].Event = "mutated"
	again, _ := e.sim.Machine("fw-copy")
	if again.Allocation.Hostname != "fw-copy" || again.Tags[0] == "mutated" || again.Events.Log[0].Event == "mutated" {
		t.Fatal("snapshot aliases simulator state")
	}
	if !slices.Equal(again.PendingEvents, []string{metal.EventBootingNewKernel, metal.EventPhonedHome}) {
		t.Errorf("pending = %v", again.PendingEvents)
	}
}

func TestAdvanceNeedsFakeClock(t *testing.T) {
	sim := metalsim.New(metalsim.DefaultConfig())
	if err := sim.Advance(time.Second); err == nil {
		t.Fatal("Advance on the real clock must fail")
	}
}
