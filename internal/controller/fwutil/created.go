package fwutil

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// maxErrorMessage bounds a metal-api error carried into a condition: metal-api or a proxy in
// front of it may answer with a whole HTML page.
const maxErrorMessage = 400

// SanitizeError makes an error text fit for a condition message: control characters and runs
// of whitespace become one space, and it is cut to a few hundred characters.
func SanitizeError(msg string) string {
	msg = strings.Join(strings.FieldsFunc(msg, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if r := []rune(msg); len(r) > maxErrorMessage {
		msg = string(r[:maxErrorMessage]) + "…"
	}
	return msg
}

// FirewallsCreated is a set's FirewallsCreated condition (without ObservedGeneration), from the
// Created conditions of its firewalls; those being deleted do not count. A firewall whose
// allocation metal-api refused (Created=False AllocationFailed) makes it False AllocationFailed
// with that error, the newest one when several failed; a firewall without a machine otherwise
// makes it False Allocating.
func FirewallsCreated(firewalls []*v2.Firewall) metav1.Condition {
	var failed []*metav1.Condition
	var failedNames []string
	total, created := 0, 0
	for _, fw := range firewalls {
		if !fw.DeletionTimestamp.IsZero() {
			continue
		}
		total++
		c := meta.FindStatusCondition(fw.Status.Conditions, v2.ConditionCreated)
		switch {
		case c == nil:
		case c.Status == metav1.ConditionTrue:
			created++
		case c.Reason == v2.ReasonAllocationFailed:
			failed = append(failed, c)
			failedNames = append(failedNames, fw.Name)
		}
	}
	cond := metav1.Condition{Type: v2.ConditionFirewallsCreated}
	switch {
	case len(failed) > 0:
		newest := 0
		for i := range failed {
			byTime := failed[i].LastTransitionTime.Compare(failed[newest].LastTransitionTime.Time)
			if byTime > 0 || byTime == 0 && cmp.Less(failedNames[i], failedNames[newest]) {
				newest = i
			}
		}
		cond.Status, cond.Reason = metav1.ConditionFalse, v2.ReasonAllocationFailed
		cond.Message = fmt.Sprintf("firewall %s: %s", failedNames[newest], SanitizeError(failed[newest].Message))
		if others := len(failed) - 1; others > 0 {
			rest := slices.Delete(slices.Clone(failedNames), newest, newest+1)
			slices.Sort(rest)
			cond.Message += fmt.Sprintf(" (allocation failed for %d more: %s)", others, strings.Join(rest, ", "))
		}
	case created < total:
		cond.Status, cond.Reason = metav1.ConditionFalse, v2.ReasonAllocating
		cond.Message = fmt.Sprintf("%d of %d firewalls have a machine", created, total)
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, v2.ReasonFirewallsCreated
		cond.Message = fmt.Sprintf("%d of %d firewalls have a machine", created, total)
	}
	return cond
}

// DeploymentFirewallsCreated is a deployment's FirewallsCreated condition from its sets' (those
// not being deleted, sorted by revision, newest last): the newest set's allocation error if any
// set has one, else Allocating while a set's firewalls lack machines, else True.
func DeploymentFirewallsCreated(sets []*v2.FirewallSet) metav1.Condition {
	var allocating *v2.FirewallSet
	for i := len(sets) - 1; i >= 0; i-- {
		set := sets[i]
		if !set.DeletionTimestamp.IsZero() {
			continue
		}
		c := meta.FindStatusCondition(set.Status.Conditions, v2.ConditionFirewallsCreated)
		switch {
		case c == nil || c.Status == metav1.ConditionTrue:
		case c.Reason == v2.ReasonAllocationFailed:
			return metav1.Condition{Type: v2.ConditionFirewallsCreated, Status: metav1.ConditionFalse, Reason: v2.ReasonAllocationFailed,
				Message: fmt.Sprintf("set %s: %s", set.Name, c.Message)}
		case allocating == nil:
			allocating = set
		}
	}
	if allocating != nil {
		c := meta.FindStatusCondition(allocating.Status.Conditions, v2.ConditionFirewallsCreated)
		return metav1.Condition{Type: v2.ConditionFirewallsCreated, Status: metav1.ConditionFalse, Reason: v2.ReasonAllocating,
			Message: fmt.Sprintf("set %s: %s", allocating.Name, c.Message)}
	}
	return metav1.Condition{Type: v2.ConditionFirewallsCreated, Status: metav1.ConditionTrue, Reason: v2.ReasonFirewallsCreated,
		Message: "every firewall has its machine"}
}
