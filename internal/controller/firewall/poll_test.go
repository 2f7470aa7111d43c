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
		want, watch  time.Duration
	}{
		{"nothing learned yet: slow", fast, 0, alloc, metal.EventInstalling, at(time.Second), slow, 0},
		{"nothing learned, booting the new kernel: the phone-home is next, watch", fast, 0, alloc, metal.EventBootingNewKernel, at(time.Second), slow, slow},
		{"no allocation time: slow", fast, 3 * time.Second, time.Time{}, "", at(0), slow, 0},
		{"long before the expected phone-home: slow", fast, 5 * time.Minute, alloc, metal.EventInstalling, at(time.Minute), slow, 0},
		{"wake up at the expected phone-home", fast, 3 * time.Second, alloc, "", at(0), 3 * time.Second, 0},
		{"booting the new kernel long before the expected phone-home: still slow", fast, 5 * time.Minute, alloc, metal.EventBootingNewKernel, at(time.Minute), slow, 0},
		{"right before the expected phone-home: wait for it", fast, 3 * time.Second, alloc, metal.EventInstalling, at(2500 * time.Millisecond), 500 * time.Millisecond, 0},
		{"at the expected phone-home: watched until the window ends", fast, 3 * time.Second, alloc, metal.EventInstalling, at(3 * time.Second), slow, slow},
		{"late for its phone-home: watched for a while", fast, 3 * time.Second, alloc, metal.EventBootingNewKernel, at(7 * time.Second), time.Second, time.Second},
		{"long overdue: slow again", fast, 3 * time.Second, alloc, metal.EventBootingNewKernel, at(9 * time.Second), slow, 0},
		{"overdue window grows with the provisioning time", fast, 4 * time.Minute, alloc, metal.EventBootingNewKernel, at(4*time.Minute + 50*time.Second), slow, 10 * time.Second},
		{"just before the expected phone-home: never a busy loop", fast, 3 * time.Second, alloc, "", at(2999 * time.Millisecond), fast / 4, 0},
		{"fast poll off", 0, 3 * time.Second, alloc, metal.EventBootingNewKernel, at(3 * time.Second), slow, 0},
		{"fast poll not faster than slow: off", 10 * time.Second, 3 * time.Second, alloc, "", at(3 * time.Second), slow, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, watch := creatingPoll(slow, tt.fast, tt.provisioning, tt.allocated, tt.lastEvent, tt.now)
			if next != tt.want || watch != tt.watch {
				t.Errorf("creatingPoll = %s, watch %s; want %s, watch %s", next, watch, tt.want, tt.watch)
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
