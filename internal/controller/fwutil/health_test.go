package fwutil

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	cond := func(typ string, status bool, since time.Duration) metav1.Condition {
		s := metav1.ConditionFalse
		if status {
			s = metav1.ConditionTrue
		}
		return metav1.Condition{Type: typ, Status: s, Reason: "Test", LastTransitionTime: ago(since)}
	}
	allReady := func(since time.Duration) []metav1.Condition {
		var out []metav1.Condition
		for _, c := range readinessConditions {
			out = append(out, cond(c, true, since))
		}
		return append(out, cond(v2.ConditionProvisioned, true, since))
	}
	// with replaces or adds conditions.
	with := func(base []metav1.Condition, cs ...metav1.Condition) []metav1.Condition {
		out := append([]metav1.Condition(nil), base...)
		for _, c := range cs {
			replaced := false
			for i := range out {
				if out[i].Type == c.Type {
					out[i], replaced = c, true
				}
			}
			if !replaced {
				out = append(out, c)
			}
		}
		return out
	}
	allocated := func(d time.Duration) *v2.MachineStatus {
		return &v2.MachineStatus{MachineID: "m-1", AllocationTimestamp: ago(d)}
	}
	timeouts := Timeouts{Create: 10 * time.Minute, Health: 5 * time.Minute}

	tests := []struct {
		name      string
		created   time.Duration // object age
		machine   *v2.MachineStatus
		phase     v2.FirewallPhase
		conds     []metav1.Condition
		timeouts  Timeouts
		want      Health
		recheckIn time.Duration
	}{
		{name: "all conditions true is ready", created: time.Hour, machine: allocated(time.Hour), conds: allReady(time.Hour), timeouts: timeouts, want: HealthReady},
		{name: "ready ignores the timeouts", created: 0, conds: allReady(0), timeouts: Timeouts{Create: time.Nanosecond, Health: time.Nanosecond}, want: HealthReady},
		{
			// Upstream's bug: a missing Ready condition counted as "since year 1".
			name: "no conditions yet, just created: progressing, not timed out", created: time.Second,
			timeouts: timeouts, want: HealthProgressing, recheckIn: 10*time.Minute - time.Second,
		},
		{
			name: "no conditions and no machine: create timeout runs from the object's creation", created: 11 * time.Minute,
			timeouts: timeouts, want: HealthCreateTimeout,
		},
		{
			name: "old object, fresh allocation: the create timeout runs from the allocation", created: time.Hour,
			machine: allocated(time.Minute), conds: []metav1.Condition{cond(v2.ConditionCreated, true, time.Minute)},
			timeouts: timeouts, want: HealthProgressing, recheckIn: 9 * time.Minute,
		},
		{
			name: "allocated longer ago than the create timeout", created: time.Hour,
			machine: allocated(10 * time.Minute), conds: []metav1.Condition{cond(v2.ConditionCreated, true, 10*time.Minute)},
			timeouts: timeouts, want: HealthCreateTimeout,
		},
		{
			name: "phoned home but the agent never connected: create timeout", created: time.Hour, machine: allocated(11 * time.Minute),
			conds:    with(allReady(11*time.Minute), cond(v2.ConditionConnected, false, 11*time.Minute), cond(v2.ConditionProvisioned, false, 11*time.Minute)),
			timeouts: timeouts, want: HealthCreateTimeout,
		},
		{
			name: "phoned home, agent not yet connected, within the create timeout", created: time.Hour, machine: allocated(2 * time.Minute),
			conds:    with(allReady(time.Minute), cond(v2.ConditionConnected, false, time.Minute), cond(v2.ConditionProvisioned, false, time.Minute)),
			timeouts: timeouts, want: HealthProgressing, recheckIn: 8 * time.Minute,
		},
		{
			name: "crash-looping before provisioning is progressing until the create timeout", created: time.Hour, machine: allocated(time.Minute),
			phase: v2.FirewallPhaseCrashing, conds: []metav1.Condition{cond(v2.ConditionCreated, true, time.Minute), cond(v2.ConditionReady, false, time.Minute)},
			timeouts: timeouts, want: HealthProgressing, recheckIn: 9 * time.Minute,
		},
		{
			name: "crash-looping past the create timeout", created: time.Hour, machine: allocated(20 * time.Minute),
			phase: v2.FirewallPhaseCrashing, conds: []metav1.Condition{cond(v2.ConditionCreated, true, 20*time.Minute), cond(v2.ConditionReady, false, 20*time.Minute)},
			timeouts: timeouts, want: HealthCreateTimeout,
		},
		{
			name: "provisioned, then the agent stopped: unhealthy within the health timeout", created: time.Hour, machine: allocated(time.Hour),
			conds:    with(allReady(time.Hour), cond(v2.ConditionConnected, false, 2*time.Minute)),
			timeouts: timeouts, want: HealthUnhealthy, recheckIn: 3 * time.Minute,
		},
		{
			name: "provisioned, agent stopped longer than the health timeout", created: time.Hour, machine: allocated(time.Hour),
			conds:    with(allReady(time.Hour), cond(v2.ConditionConnected, false, 6*time.Minute)),
			timeouts: timeouts, want: HealthHealthTimeout,
		},
		{
			name: "health timeout runs from the earliest failing condition", created: time.Hour, machine: allocated(time.Hour),
			conds:    with(allReady(time.Hour), cond(v2.ConditionConnected, false, time.Minute), cond(v2.ConditionSeedConnected, false, 4*time.Minute)),
			timeouts: timeouts, want: HealthUnhealthy, recheckIn: time.Minute,
		},
		{
			name: "provisioned but a readiness condition is missing: unhealthy from now", created: time.Hour, machine: allocated(time.Hour),
			conds:    []metav1.Condition{cond(v2.ConditionProvisioned, true, time.Hour), cond(v2.ConditionCreated, true, time.Hour)},
			timeouts: timeouts, want: HealthUnhealthy, recheckIn: 5 * time.Minute,
		},
		{
			name: "provisioned and degraded, no health timeout configured", created: time.Hour, machine: allocated(time.Hour),
			conds:    with(allReady(time.Hour), cond(v2.ConditionReady, false, 48*time.Hour)),
			timeouts: Timeouts{Create: time.Minute}, want: HealthUnhealthy,
		},
		{
			name: "never provisioned, no create timeout configured", created: 48 * time.Hour, machine: allocated(48 * time.Hour),
			conds: []metav1.Condition{cond(v2.ConditionCreated, true, 48*time.Hour)}, timeouts: Timeouts{Health: time.Minute}, want: HealthProgressing,
		},
		{
			name: "exactly at the create deadline counts as timed out", created: time.Hour, machine: allocated(10 * time.Minute),
			timeouts: timeouts, want: HealthCreateTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw := &v2.Firewall{
				ObjectMeta: metav1.ObjectMeta{Name: "fw", CreationTimestamp: ago(tt.created)},
				Status:     v2.FirewallStatus{Phase: tt.phase, Conditions: tt.conds, MachineStatus: tt.machine},
			}
			got := Evaluate(fw, now, tt.timeouts)
			if got.Health != tt.want {
				t.Fatalf("health = %s (%s), want %s", got.Health, got.Message, tt.want)
			}
			if got.RecheckIn != tt.recheckIn {
				t.Errorf("recheckIn = %s, want %s", got.RecheckIn, tt.recheckIn)
			}
			if got.TimedOut() != (tt.want == HealthCreateTimeout || tt.want == HealthHealthTimeout) {
				t.Errorf("TimedOut() = %v for %s", got.TimedOut(), got.Health)
			}
			if got.Health != HealthReady && got.Message == "" {
				t.Error("a verdict other than ready must say why")
			}
		})
	}
}

func TestEvaluateCrashLoopMessage(t *testing.T) {
	fw := &v2.Firewall{Status: v2.FirewallStatus{Phase: v2.FirewallPhaseCrashing}}
	v := Evaluate(fw, time.Now(), Timeouts{})
	if v.Health != HealthProgressing || v.Message == "" || v.Message[:len("machine is crash-looping")] != "machine is crash-looping" {
		t.Fatalf("got %+v, want a progressing verdict naming the crash loop", v)
	}
}
