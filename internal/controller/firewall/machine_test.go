package firewall

import (
	"errors"
	"testing"
	"time"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
)

func machine(id string, created time.Time, phonedHome bool) *metal.FirewallResponse {
	m := &metal.FirewallResponse{}
	m.ID = id
	m.Allocation = &metal.MachineAllocation{Created: created}
	if phonedHome {
		m.Events.Log = []metal.MachineProvisioningEvent{{Event: metal.EventPhonedHome}}
	}
	return m
}

func TestPickMachine(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	older, newer := machine("b", t0, false), machine("a", t0.Add(time.Minute), true)
	for _, tc := range []struct {
		name     string
		status   string
		machines []*metal.FirewallResponse
		want     string
	}{
		{"the machine the status names wins", "b", []*metal.FirewallResponse{newer, older}, "b"},
		{"else the one that phoned home", "", []*metal.FirewallResponse{older, newer}, "a"},
		{"a status naming none of them counts as none", "zz", []*metal.FirewallResponse{older, newer}, "a"},
		{"else the oldest", "", []*metal.FirewallResponse{machine("y", t0.Add(time.Second), false), machine("x", t0, false)}, "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fw := &v2.Firewall{}
			if tc.status != "" {
				fw.Status.MachineStatus = &v2.MachineStatus{MachineID: tc.status}
			}
			if got := pickMachine(fw, tc.machines); got.ID != tc.want {
				t.Errorf("kept %s, want %s", got.ID, tc.want)
			}
		})
	}
}

func TestAnswered(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New("context deadline exceeded"), false},
		{&metal.APIError{StatusCode: 504}, false},
		{&metal.APIError{StatusCode: 502}, false},
		{&metal.APIError{StatusCode: 408}, false},
		{&metal.APIError{StatusCode: 500}, true},
		{&metal.APIError{StatusCode: 422}, true},
		{&metal.APIError{StatusCode: 400}, true},
	} {
		if got := answered(tc.err); got != tc.want {
			t.Errorf("answered(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
