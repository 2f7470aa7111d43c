package metalsim

import (
	"fmt"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// faultRules is the injected misbehaviour; guarded by Simulator.mu.
type faultRules struct {
	loseAllocate      int
	duplicateAllocate int
	conflictOnUpdate  int
	failNext          map[string]*countedFailure
	latency           time.Duration
	delayNext         map[string]*countedDelay
	// stall maps a machine id or hostname to the event it stops at.
	stall       map[string]string
	crashLoop   map[string]bool
	failReclaim map[string]bool
	noHeartbeat map[string]bool
	shuffleTags bool
	inflight    inflightRules
}

type countedFailure struct {
	remaining int
	code      int
}

type countedDelay struct {
	remaining int
	delay     time.Duration
}

func newFaultRules() faultRules {
	return faultRules{
		failNext:    map[string]*countedFailure{},
		delayNext:   map[string]*countedDelay{},
		stall:       map[string]string{},
		crashLoop:   map[string]bool{},
		failReclaim: map[string]bool{},
		noHeartbeat: map[string]bool{},
	}
}

// Faults injects the failures that break firewall managers in production.
// Targets name a machine by id or by allocation hostname; a hostname rule
// also applies to a machine allocated later with that hostname.
type Faults struct{ sim *Simulator }

// Faults returns the fault injector.
func (s *Simulator) Faults() *Faults { return s.faults }

func (f *Faults) with(fn func(st *state, now time.Time)) { f.sim.locked(fn) }

// Reset removes every injected fault. Machines keep their current state.
func (f *Faults) Reset() {
	f.with(func(st *state, now time.Time) {
		for _, m := range st.machines {
			if m.heartbeatFrom.IsZero() {
				m.heartbeatFrom = now
			}
			resume(m, now)
		}
		st.faults = newFaultRules()
	})
}

// LoseNextAllocateResponse makes the next n allocations succeed server-side
// but answer 500, as if the response was lost.
func (f *Faults) LoseNextAllocateResponse(n int) {
	f.with(func(st *state, _ time.Time) { st.faults.loseAllocate = n })
}

// DuplicateNextAllocate makes the next n allocations allocate a second
// machine with the same name, hostname and tags (FCM's MultipleFirewalls).
func (f *Faults) DuplicateNextAllocate(n int) {
	f.with(func(st *state, _ time.Time) { st.faults.duplicateAllocate = n })
}

// FailNext answers the next n requests of op (e.g. metal.OpFirewallFind)
// with code and a JSON error body, without touching state.
func (f *Faults) FailNext(op string, n, code int) {
	f.with(func(st *state, _ time.Time) {
		st.faults.failNext[op] = &countedFailure{remaining: n, code: code}
	})
}

// ConflictOnUpdate answers the next n machine updates with 409, as
// metal-api does on an optimistic-locking conflict.
func (f *Faults) ConflictOnUpdate(n int) {
	f.with(func(st *state, _ time.Time) { st.faults.conflictOnUpdate = n })
}

// Latency delays every request by d (real time, not the injected clock).
func (f *Faults) Latency(d time.Duration) {
	f.with(func(st *state, _ time.Time) { st.faults.latency = d })
}

// DelayNext delays the next n requests of op by d (real time).
func (f *Faults) DelayNext(op string, n int, d time.Duration) {
	f.with(func(st *state, _ time.Time) {
		st.faults.delayNext[op] = &countedDelay{remaining: n, delay: d}
	})
}

// StallProvisioning stops the machine's install at Installing: it stays
// alive but never phones home (create-timeout tests).
func (f *Faults) StallProvisioning(target string) {
	f.StallProvisioningAt(target, metal.EventInstalling)
}

// StallProvisioningAt stops the machine once event is its latest event.
func (f *Faults) StallProvisioningAt(target, event string) {
	f.with(func(st *state, _ time.Time) { st.faults.stall[target] = event })
}

// ResumeProvisioning lifts a stall; the remaining steps continue from now.
func (f *Faults) ResumeProvisioning(target string) {
	f.with(func(st *state, now time.Time) {
		delete(st.faults.stall, target)
		if m := st.find(target); m != nil {
			resume(m, now)
		}
	})
}

// CrashLoop makes the machine crash at the end of every install attempt,
// setting crash_loop and last_error_event.
func (f *Faults) CrashLoop(target string) {
	f.with(func(st *state, _ time.Time) { st.faults.crashLoop[target] = true })
}

// StopCrashLoop lets the next install attempt succeed.
func (f *Faults) StopCrashLoop(target string) {
	f.with(func(st *state, _ time.Time) { delete(st.faults.crashLoop, target) })
}

// StopHeartbeat freezes the machine's last event time: liveliness turns
// Unknown (allocated) or Dead (free) after Provisioning.DeadAfter.
func (f *Faults) StopHeartbeat(target string) {
	f.with(func(st *state, now time.Time) {
		st.faults.noHeartbeat[target] = true
		for _, m := range st.machines {
			if st.matches(m, target) {
				st.stopHeartbeat(m, now)
			}
		}
	})
}

// ResumeHeartbeat restarts heartbeats; the machine is Alive again at once.
func (f *Faults) ResumeHeartbeat(target string) {
	f.with(func(st *state, now time.Time) {
		delete(st.faults.noHeartbeat, target)
		for _, m := range st.machines {
			if st.matches(m, target) && m.heartbeatFrom.IsZero() {
				m.heartbeatFrom = now
				st.applyEvent(m, metal.EventAlive, "", now)
			}
		}
	})
}

// FailReclaim makes the next free of the machine not reclaim it: the OS
// keeps running, phones home late and sets failed_machine_reclaim. The
// machine never returns to the pool.
func (f *Faults) FailReclaim(target string) {
	f.with(func(st *state, _ time.Time) { st.faults.failReclaim[target] = true })
}

// Vanish deletes the machine as if an admin removed it outside Palisade:
// GET answers 404 and find no longer returns it.
func (f *Faults) Vanish(target string) error {
	var err error
	f.with(func(st *state, now time.Time) {
		m := st.find(target)
		if m == nil {
			err = fmt.Errorf("metalsim: no machine %q", target)
			return
		}
		st.record(TimelineVanished, m, now, "")
		st.releaseIPs(m.id)
		delete(st.machines, m.id)
	})
	return err
}

// Lock sets the machine state to LOCKED: free answers 422.
func (f *Faults) Lock(target string) error { return f.setState(target, metal.StateLocked) }

// Unlock returns the machine to the available state.
func (f *Faults) Unlock(target string) error { return f.setState(target, metal.StateAvailable) }

func (f *Faults) setState(target, value string) error {
	var err error
	f.with(func(st *state, _ time.Time) {
		m := st.find(target)
		if m == nil {
			err = fmt.Errorf("metalsim: no machine %q", target)
			return
		}
		m.stateValue = value
	})
	return err
}

// Reboot sends Planned Reboot now and Phoned Home after
// Provisioning.BootingNewKernel; this also clears crash_loop.
func (f *Faults) Reboot(target string) error {
	var err error
	f.with(func(st *state, now time.Time) {
		m := st.find(target)
		if m == nil || m.allocation == nil {
			err = fmt.Errorf("metalsim: no allocated machine %q", target)
			return
		}
		st.applyEvent(m, metal.EventPlannedReboot, "", now)
		m.pending = []scheduledEvent{{at: now.Add(st.prov.BootingNewKernel.Duration), event: metal.EventPhonedHome}}
	})
	return err
}

// ShuffleTags returns tags in random order, as the real server may.
func (f *Faults) ShuffleTags(on bool) {
	f.with(func(st *state, _ time.Time) { st.faults.shuffleTags = on })
}

// takeFailure consumes one injected failure for op, returning its code or 0.
func (fr *faultRules) takeFailure(op string) int {
	if fail := fr.failNext[op]; fail != nil && fail.remaining > 0 {
		fail.remaining--
		return fail.code
	}
	if op == metal.OpMachineUpdate && fr.conflictOnUpdate > 0 {
		fr.conflictOnUpdate--
		return 409
	}
	return 0
}

// takeDelay consumes the injected delay for op.
func (fr *faultRules) takeDelay(op string) time.Duration {
	d := fr.latency
	if dl := fr.delayNext[op]; dl != nil && dl.remaining > 0 {
		dl.remaining--
		d += dl.delay
	}
	return d
}
