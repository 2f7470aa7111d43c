package metalsim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// Test and benchmark hooks. They are Go API only, never reachable over HTTP.

// MachineSnapshot is a deep copy of one machine as the API would show it,
// with the full event log (newest first) instead of the last 20.
type MachineSnapshot struct {
	metal.MachineResponse
	// Waiting is true while the machine sits in the pool, allocatable.
	Waiting bool
	// PendingEvents are the lifecycle events still scheduled, in order.
	PendingEvents []string
}

// TimelineKind names what happened in a TimelineEvent.
type TimelineKind string

// Timeline kinds.
const (
	TimelineAllocated     TimelineKind = "Allocated"
	TimelinePhonedHome    TimelineKind = "PhonedHome"
	TimelineCrashed       TimelineKind = "Crashed"
	TimelineUpdated       TimelineKind = "Updated"
	TimelineReinstalled   TimelineKind = "Reinstalled"
	TimelineFreed         TimelineKind = "Freed"
	TimelineReclaimed     TimelineKind = "Reclaimed"
	TimelineFailedReclaim TimelineKind = "FailedReclaim"
	TimelineVanished      TimelineKind = "Vanished"
	TimelineDeleted       TimelineKind = "Deleted"
)

// TimelineEvent is one lifecycle milestone, for benchmarks and invariants
// such as "the new firewall phoned home before the old one was freed".
type TimelineEvent struct {
	Time      time.Time
	Kind      TimelineKind
	MachineID string
	Hostname  string
	Name      string
	Project   string
	// Note carries details, e.g. "response lost" for an injected fault.
	Note string
}

// RequestRecord is one HTTP request the simulator saw.
type RequestRecord struct {
	Op       string
	Method   string
	Path     string
	AuthType string
	Status   int
}

// Now returns the simulator clock's time.
func (s *Simulator) Now() time.Time { return s.clock.Now() }

// Tick evaluates all lifecycle events due at the current clock time. Every
// request does this anyway; Tick is for tests that only read snapshots.
func (s *Simulator) Tick() { s.locked(func(*state, time.Time) {}) }

// Advance steps the injected fake clock by d and evaluates due events. It
// fails when the clock cannot be stepped (e.g. the real clock).
func (s *Simulator) Advance(d time.Duration) error {
	stepper, ok := s.clock.(interface{ Step(time.Duration) })
	if !ok {
		return errors.New("metalsim: Advance needs a steppable clock such as FakeClock")
	}
	stepper.Step(d)
	s.Tick()
	return nil
}

// Machines returns deep copies of all machines ordered by id.
func (s *Simulator) Machines() []MachineSnapshot {
	var out []MachineSnapshot
	s.locked(func(st *state, now time.Time) {
		for _, m := range st.sortedMachines() {
			out = append(out, st.snapshot(m, now))
		}
	})
	return out
}

// Machine returns the machine with this id or allocation hostname.
func (s *Simulator) Machine(target string) (MachineSnapshot, bool) {
	var out MachineSnapshot
	var found bool
	s.locked(func(st *state, now time.Time) {
		if m := st.find(target); m != nil {
			out, found = st.snapshot(m, now), true
		}
	})
	return out, found
}

func (st *state) snapshot(m *machine, now time.Time) MachineSnapshot {
	snap := MachineSnapshot{
		MachineResponse: deepCopy(*st.renderMachine(m, now, 0, false)),
		Waiting:         m.waiting,
	}
	for _, p := range m.pending {
		snap.PendingEvents = append(snap.PendingEvents, p.event)
	}
	return snap
}

// find returns the machine with this id, or else the allocated machine with
// this hostname (lowest id first, for determinism).
func (st *state) find(target string) *machine {
	if m, ok := st.machines[target]; ok {
		return m
	}
	for _, m := range st.sortedMachines() {
		if m.allocation != nil && m.allocation.Hostname == target {
			return m
		}
	}
	return nil
}

// Timeline returns all milestones in time order.
func (s *Simulator) Timeline() []TimelineEvent {
	var out []TimelineEvent
	s.locked(func(st *state, _ time.Time) { out = slices.Clone(st.timeline) })
	return out
}

// RequestCount returns how many requests hit an operation (e.g.
// metal.OpFirewallAllocate), including rejected ones.
func (s *Simulator) RequestCount(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// RequestCounts returns a copy of all per-operation counters.
func (s *Simulator) RequestCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

// Requests returns the recorded requests in arrival order (the first
// 100000; RequestCounts keeps counting beyond that). ResetRequests starts over.
func (s *Simulator) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ResetRequests clears counters and the request log.
func (s *Simulator) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[string]int{}
	s.requests = nil
}

// PhoneHomeNow completes the install of the allocated machine with this
// hostname (or id) at the current time, skipping the remaining delays.
func (s *Simulator) PhoneHomeNow(target string) error {
	var err error
	s.locked(func(st *state, now time.Time) {
		m := st.find(target)
		if m == nil || m.allocation == nil {
			err = fmt.Errorf("metalsim: no allocated machine %q", target)
			return
		}
		m.pending = nil
		switch m.lastEvent() {
		case metal.EventInstalling:
		case metal.EventBootingNewKernel, metal.EventPhonedHome:
		default:
			st.applyEvent(m, metal.EventInstalling, "", now)
		}
		if m.lastEvent() == metal.EventInstalling {
			st.applyEvent(m, metal.EventBootingNewKernel, "", now)
		}
		st.fire(m, scheduledEvent{at: now, event: metal.EventPhonedHome})
	})
	return err
}

// WaitForEvent polls until the machine (id or hostname) shows event as its
// latest event. With a fake clock the caller must advance it meanwhile.
func (s *Simulator) WaitForEvent(ctx context.Context, target, event string) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if snap, ok := s.Machine(target); ok && len(snap.Events.Log) > 0 && snap.Events.Log[0].Event == event {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("metalsim: waiting for %q on %q: %w", event, target, ctx.Err())
		case <-t.C:
		}
	}
}

// AddPoolMachines adds n waiting machines and returns their ids.
func (s *Simulator) AddPoolMachines(partition, size string, n int) ([]string, error) {
	var ids []string
	var err error
	s.locked(func(st *state, now time.Time) {
		if st.partitions[partition] == nil || st.sizes[size] == nil {
			err = fmt.Errorf("metalsim: unknown partition %q or size %q", partition, size)
			return
		}
		for range n {
			st.extraSeq++
			id := fmt.Sprintf("00000000-0000-4000-ffff-%012x", st.extraSeq)
			st.addPoolMachine(MachinePool{Partition: partition, Size: size}, id, now)
			ids = append(ids, id)
		}
	})
	return ids, err
}

// UsedIPs returns the addresses currently acquired in a network, sorted.
func (s *Simulator) UsedIPs(networkID string) []string {
	var out []string
	s.locked(func(st *state, _ time.Time) {
		n := st.networks[networkID]
		if n == nil {
			return
		}
		addrs := slices.Collect(maps.Keys(n.used))
		slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
		for _, a := range addrs {
			out = append(out, a.String())
		}
	})
	return out
}
