// Package fwutil holds pure helpers shared by the firewall, set and deployment controllers:
// health evaluation, importance ordering, the rollout hash and naming. Nothing here does I/O.
package fwutil

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// Health is the verdict on one firewall.
type Health string

const (
	HealthReady         Health = "Ready"
	HealthProgressing   Health = "Progressing"
	HealthUnhealthy     Health = "Unhealthy"
	HealthCreateTimeout Health = "CreateTimeout"
	HealthHealthTimeout Health = "HealthTimeout"
)

// Timeouts configure when a firewall is given up on. Zero disables a timeout.
type Timeouts struct {
	// Create is how long a firewall may take from allocation until it is ready for the first time
	// (provisioned and, unless not checked, its agent connected).
	Create time.Duration
	// Health is how long a provisioned firewall may stay not ready before it is replaced.
	Health time.Duration
}

// Verdict is the result of Evaluate.
type Verdict struct {
	Health  Health
	Message string
	// RecheckIn is when the verdict may change by time alone (a timeout expiring), or 0.
	RecheckIn time.Duration
}

// TimedOut reports whether the firewall should be replaced.
func (v Verdict) TimedOut() bool {
	return v.Health == HealthCreateTimeout || v.Health == HealthHealthTimeout
}

// readinessConditions must all be true for a firewall to carry traffic.
var readinessConditions = []string{
	v2.ConditionCreated, v2.ConditionReady, v2.ConditionConnected, v2.ConditionSeedConnected, v2.ConditionDistance,
}

// Evaluate decides whether a firewall is ready, still coming up, unhealthy or timed out.
//
// Unlike upstream, a missing condition never counts as "timed out since year 1": the create
// timeout runs from the allocation (or, before that, from the object's creation), and a firewall
// that phoned home but whose agent never connects is covered by the create timeout as well.
func Evaluate(fw *v2.Firewall, now time.Time, t Timeouts) Verdict {
	var notReady []string
	for _, c := range readinessConditions {
		if !meta.IsStatusConditionTrue(fw.Status.Conditions, c) {
			notReady = append(notReady, c)
		}
	}
	if len(notReady) == 0 {
		return Verdict{Health: HealthReady}
	}
	msg := fmt.Sprintf("not ready: %v", notReady)

	if !meta.IsStatusConditionTrue(fw.Status.Conditions, v2.ConditionProvisioned) {
		// Still coming up for the first time.
		if fw.Status.Phase == v2.FirewallPhaseCrashing {
			msg = "machine is crash-looping; " + msg
		}
		return withTimeout(Verdict{Health: HealthProgressing, Message: msg}, HealthCreateTimeout, createStart(fw), now, t.Create)
	}

	// Provisioned before and degraded since: time the first condition that went false.
	since := time.Time{}
	for _, c := range notReady {
		if cond := meta.FindStatusCondition(fw.Status.Conditions, c); cond != nil && cond.Status != metav1.ConditionTrue {
			if since.IsZero() || cond.LastTransitionTime.Time.Before(since) {
				since = cond.LastTransitionTime.Time
			}
		}
	}
	if since.IsZero() {
		since = now
	}
	return withTimeout(Verdict{Health: HealthUnhealthy, Message: msg}, HealthHealthTimeout, since, now, t.Health)
}

func withTimeout(v Verdict, timedOut Health, start, now time.Time, timeout time.Duration) Verdict {
	if timeout <= 0 {
		return v
	}
	deadline := start.Add(timeout)
	if !now.Before(deadline) {
		return Verdict{Health: timedOut, Message: fmt.Sprintf("%s (for longer than %s)", v.Message, timeout)}
	}
	v.RecheckIn = deadline.Sub(now)
	return v
}

// createStart is when the create timeout starts: the allocation if there is one, else creation.
func createStart(fw *v2.Firewall) time.Time {
	if ms := fw.Status.MachineStatus; ms != nil && !ms.AllocationTimestamp.IsZero() {
		return ms.AllocationTimestamp.Time
	}
	return fw.CreationTimestamp.Time
}
