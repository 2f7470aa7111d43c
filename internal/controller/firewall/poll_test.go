package firewall

import (
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

func TestCreatingPoll(t *testing.T) {
	slow, fast := 5*time.Second, time.Second
	alloc := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return alloc.Add(d) }
	tests := []struct {
		name         string
		fast         time.Duration
		provisioning time.Duration
		allocated    time.Time
		lastEvent    string
		now          time.Time
		want         time.Duration
	}{
		{"nothing learned yet: slow", fast, 0, alloc, metal.EventInstalling, at(time.Second), slow},
		{"nothing learned, booting the new kernel: the phone-home is next", fast, 0, alloc, metal.EventBootingNewKernel, at(time.Second), fast},
		{"no allocation time: slow", fast, 3 * time.Second, time.Time{}, "", at(0), slow},
		{"long before the expected phone-home: slow", fast, 5 * time.Minute, alloc, metal.EventInstalling, at(time.Minute), slow},
		{"wake up at the expected phone-home", fast, 3 * time.Second, alloc, "", at(0), 3 * time.Second},
		{"booting the new kernel long before the expected phone-home: still slow", fast, 5 * time.Minute, alloc, metal.EventBootingNewKernel, at(time.Minute), slow},
		{"right before the expected phone-home: wait for it", fast, 3 * time.Second, alloc, metal.EventInstalling, at(2500 * time.Millisecond), 500 * time.Millisecond},
		{"at the expected phone-home: fast", fast, 3 * time.Second, alloc, metal.EventInstalling, at(3 * time.Second), fast},
		{"late for its phone-home: fast for a while", fast, 3 * time.Second, alloc, metal.EventBootingNewKernel, at(7 * time.Second), fast},
		{"long overdue: slow again", fast, 3 * time.Second, alloc, metal.EventBootingNewKernel, at(9 * time.Second), slow},
		{"overdue window grows with the provisioning time", fast, 4 * time.Minute, alloc, metal.EventBootingNewKernel, at(4*time.Minute + 50*time.Second), fast},
		{"just before the expected phone-home: never a busy loop", fast, 3 * time.Second, alloc, "", at(2999 * time.Millisecond), fast / 4},
		{"fast poll off", 0, 3 * time.Second, alloc, metal.EventBootingNewKernel, at(3 * time.Second), slow},
		{"fast poll not faster than slow: off", 10 * time.Second, 3 * time.Second, alloc, "", at(3 * time.Second), slow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := creatingPoll(slow, tt.fast, tt.provisioning, tt.allocated, tt.lastEvent, tt.now); got != tt.want {
				t.Errorf("creatingPoll = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestProvisioningTime(t *testing.T) {
	alloc := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	machine := func(events ...metal.MachineProvisioningEvent) *metal.FirewallResponse {
		m := &metal.FirewallResponse{Allocation: &metal.MachineAllocation{Created: alloc}}
		m.Events.Log = events
		return m
	}
	ev := func(name string, after time.Duration) metal.MachineProvisioningEvent {
		return metal.MachineProvisioningEvent{Event: name, Time: alloc.Add(after)}
	}
	tests := []struct {
		name string
		m    *metal.FirewallResponse
		want time.Duration
	}{
		{"not allocated", &metal.FirewallResponse{}, 0},
		{"still installing", machine(ev(metal.EventInstalling, time.Second)), 0},
		{"phoned home", machine(ev(metal.EventPhonedHome, 3*time.Second), ev(metal.EventBootingNewKernel, 2*time.Second), ev(metal.EventInstalling, time.Second)), 3 * time.Second},
		{"a phone-home of an earlier allocation does not count", machine(ev(metal.EventInstalling, time.Second), ev(metal.EventPhonedHome, -time.Hour)), 0},
		{"the first phone-home of this allocation", machine(ev(metal.EventPhonedHome, time.Minute), ev(metal.EventPlannedReboot, 50*time.Second), ev(metal.EventPhonedHome, 4*time.Second)), 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := provisioningTime(tt.m); got != tt.want {
				t.Errorf("provisioningTime = %s, want %s", got, tt.want)
			}
		})
	}
}
