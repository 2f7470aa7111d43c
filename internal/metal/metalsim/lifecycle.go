package metalsim

import (
	"slices"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// The lifecycle is evaluated lazily: every request (and every test hook)
// first calls advance(now), which fires all scheduled events that are due.
// That keeps the simulator goroutine-free and makes it behave the same with
// a real clock and with a fake one.

// advance fires due events in time order across all machines.
func (st *state) advance(now time.Time) {
	for {
		var next *machine
		for _, m := range st.machines {
			if len(m.pending) == 0 || m.pending[0].at.After(now) || st.stalled(m) {
				continue
			}
			if next == nil || m.pending[0].at.Before(next.pending[0].at) ||
				m.pending[0].at.Equal(next.pending[0].at) && m.id < next.id {
				next = m
			}
		}
		if next == nil {
			return
		}
		ev := next.pending[0]
		next.pending = next.pending[1:]
		st.fire(next, ev)
	}
}

// stalled reports whether a stall rule holds m at its current event.
func (st *state) stalled(m *machine) bool {
	for target, event := range st.faults.stall {
		if st.matches(m, target) && m.lastEvent() == event {
			return true
		}
	}
	return false
}

// matches reports whether target names m by machine id or allocation hostname.
func (st *state) matches(m *machine, target string) bool {
	return m.id == target || m.allocation != nil && m.allocation.Hostname == target
}

func (st *state) matchesAny(m *machine, targets map[string]bool) bool {
	for t := range targets {
		if st.matches(m, t) {
			return true
		}
	}
	return false
}

// fire applies one scheduled event, turning it into a crash when a crash
// loop is injected for the machine.
func (st *state) fire(m *machine, ev scheduledEvent) {
	if ev.event == metal.EventBootingNewKernel && st.matchesAny(m, st.faults.crashLoop) {
		st.applyEvent(m, metal.EventCrashed, "kernel panic while installing (simulated)", ev.at)
		st.record(TimelineCrashed, m, ev.at, "")
		st.scheduleCrashRetry(m, ev.at)
		return
	}
	st.applyEvent(m, ev.event, ev.message, ev.at)
	switch {
	case ev.event == metal.EventPhonedHome && m.allocation != nil && !m.installed && m.lastEvent() == metal.EventPhonedHome:
		m.installed = true
		st.record(TimelinePhonedHome, m, ev.at, "")
	case ev.event == metal.EventWaiting && m.reclaiming:
		m.reclaiming = false
		st.record(TimelineReclaimed, m, ev.at, "")
	case ev.event == metal.EventPhonedHome && m.failedReclaim:
		st.record(TimelineFailedReclaim, m, ev.at, "")
	}
}

func (m *machine) lastEvent() string {
	if len(m.events) == 0 {
		return ""
	}
	return m.events[len(m.events)-1].Event
}

// validNext lists the transitions metal-api's FSM accepts without marking
// the event as unexpected. Planned Reboot and Machine Reclaim are always valid.
var validNext = map[string][]string{
	"":                          {metal.EventPXEBooting, metal.EventCrashed},
	metal.EventPXEBooting:       {metal.EventPXEBooting, metal.EventPreparing, metal.EventCrashed},
	metal.EventPreparing:        {metal.EventRegistering, metal.EventInstalling, metal.EventCrashed},
	metal.EventRegistering:      {metal.EventWaiting, metal.EventInstalling, metal.EventCrashed},
	metal.EventWaiting:          {metal.EventInstalling, metal.EventCrashed},
	metal.EventInstalling:       {metal.EventBootingNewKernel, metal.EventCrashed},
	metal.EventBootingNewKernel: {metal.EventPhonedHome, metal.EventCrashed},
	metal.EventPhonedHome:       {metal.EventPhonedHome},
	metal.EventCrashed:          {metal.EventPXEBooting},
	metal.EventPlannedReboot:    {metal.EventPXEBooting, metal.EventPhonedHome},
	metal.EventMachineReclaim:   {metal.EventPXEBooting},
}

// applyEvent stores a provisioning event following the subset of
// metal-api's FSM rules that a firewall manager can observe.
func (st *state) applyEvent(m *machine, name, message string, at time.Time) {
	last := m.lastEvent()
	switch {
	case name == metal.EventAlive:
		m.lastEventTime = at
		return
	case name == last && (name == metal.EventPhonedHome || name == metal.EventPXEBooting):
		// Repeats are swallowed; they only refresh the time.
		m.lastEventTime = at
		return
	case name == metal.EventPhonedHome && slices.Contains([]string{metal.EventPXEBooting, metal.EventPreparing, metal.EventRegistering, metal.EventWaiting}, last) &&
		at.Sub(m.lastEventTime) <= st.prov.FailedReclaimAfter.Duration:
		// A late buffered Phoned Home during the pool boot.
		return
	case name == metal.EventPhonedHome && last == metal.EventMachineReclaim:
		if at.Sub(m.lastEventTime) > st.prov.FailedReclaimAfter.Duration {
			// The OS kept running although the machine was freed.
			m.failedReclaim = true
		}
	}

	ev := metal.MachineProvisioningEvent{Event: name, Message: message, Time: at}
	valid := name == metal.EventPlannedReboot || name == metal.EventMachineReclaim || slices.Contains(validNext[last], name)
	if !valid {
		ev.Message = "[unexpectedly received in " + last + "] " + message
		if name == metal.EventPXEBooting || name == metal.EventPreparing {
			m.crashLoop = true
		}
	}
	switch name {
	case metal.EventCrashed:
		m.crashLoop = true
	case metal.EventPhonedHome, metal.EventPlannedReboot, metal.EventMachineReclaim:
		if valid || name != metal.EventPhonedHome {
			m.crashLoop = false
		}
	case metal.EventPXEBooting, metal.EventPreparing:
		m.failedReclaim = false
	case metal.EventWaiting:
		m.waiting = true
	}
	if !valid || name == metal.EventCrashed {
		errEv := ev
		m.lastErrorEvent = &errEv
	}
	m.events = append(m.events, ev)
	if len(m.events) > maxStoredEvents {
		m.events = m.events[len(m.events)-maxStoredEvents:]
	}
	m.lastEventTime = at
	m.changed = at
}

// lastSeen is the last event time including periodic heartbeats.
func (st *state) lastSeen(m *machine, now time.Time) time.Time {
	t := m.lastEventTime
	if m.heartbeatFrom.IsZero() || !now.After(m.heartbeatFrom) {
		return t
	}
	h := st.prov.HeartbeatInterval.Duration
	beat := m.heartbeatFrom.Add(now.Sub(m.heartbeatFrom) / h * h)
	if beat.After(t) {
		return beat
	}
	return t
}

// stopHeartbeat freezes the last seen time at now.
func (st *state) stopHeartbeat(m *machine, now time.Time) {
	m.lastEventTime = st.lastSeen(m, now)
	m.heartbeatFrom = time.Time{}
}

func (st *state) liveliness(m *machine, now time.Time) string {
	if len(m.events) == 0 {
		return ""
	}
	if now.Sub(st.lastSeen(m, now)) <= st.prov.DeadAfter.Duration {
		return metal.LivelinessAlive
	}
	if m.allocation != nil {
		return metal.LivelinessUnknown
	}
	return metal.LivelinessDead
}

// allocatable: free, in the available state, done with its pool boot and alive.
func (st *state) allocatable(m *machine, now time.Time) bool {
	return m.allocation == nil && m.stateValue == metal.StateAvailable && m.waiting &&
		st.liveliness(m, now) == metal.LivelinessAlive
}

func (st *state) scheduleInstall(m *machine, t0 time.Time) {
	p := st.prov
	m.pending = []scheduledEvent{
		{at: t0, event: metal.EventInstalling},
		{at: t0.Add(p.Installing.Duration), event: metal.EventBootingNewKernel},
		{at: t0.Add(p.Installing.Duration + p.BootingNewKernel.Duration), event: metal.EventPhonedHome},
	}
}

// scheduleCrashRetry replays the boot after a crash; it crashes again while
// the crash-loop fault holds.
func (st *state) scheduleCrashRetry(m *machine, t time.Time) {
	p := st.prov
	s := p.ReclaimStep.Duration
	installed := t.Add(3*s + p.Installing.Duration)
	m.pending = []scheduledEvent{
		{at: t.Add(s), event: metal.EventPXEBooting},
		{at: t.Add(2 * s), event: metal.EventPreparing},
		{at: t.Add(3 * s), event: metal.EventInstalling},
		{at: installed, event: metal.EventBootingNewKernel},
		{at: installed.Add(p.BootingNewKernel.Duration), event: metal.EventPhonedHome},
	}
}

func (st *state) scheduleReclaim(m *machine, t time.Time) {
	p := st.prov
	start := t.Add(p.ReclaimDelay.Duration)
	s := p.ReclaimStep.Duration
	m.pending = []scheduledEvent{
		{at: start, event: metal.EventPXEBooting},
		{at: start.Add(s), event: metal.EventPreparing},
		{at: start.Add(2 * s), event: metal.EventRegistering},
		{at: start.Add(3 * s), event: metal.EventWaiting},
	}
}

// scheduleFailedReclaim models a machine whose OS keeps running after free:
// it phones home too late, which flags failed_machine_reclaim.
func (st *state) scheduleFailedReclaim(m *machine, t time.Time) {
	m.pending = []scheduledEvent{{
		at:    t.Add(st.prov.FailedReclaimAfter.Duration + time.Second),
		event: metal.EventPhonedHome,
	}}
}

func (st *state) scheduleReinstall(m *machine, t time.Time) {
	p := st.prov
	s := p.ReclaimStep.Duration
	installed := t.Add(3*s + p.Installing.Duration)
	m.pending = []scheduledEvent{
		{at: t.Add(s), event: metal.EventPXEBooting},
		{at: t.Add(2 * s), event: metal.EventPreparing},
		{at: t.Add(3 * s), event: metal.EventInstalling},
		{at: installed, event: metal.EventBootingNewKernel},
		{at: installed.Add(p.BootingNewKernel.Duration), event: metal.EventPhonedHome},
	}
}

// resume shifts a stalled machine's remaining events so they continue from now.
func resume(m *machine, now time.Time) {
	if len(m.pending) == 0 || !m.pending[0].at.Before(now) {
		return
	}
	shift := now.Sub(m.pending[0].at)
	for i := range m.pending {
		m.pending[i].at = m.pending[i].at.Add(shift)
	}
}
