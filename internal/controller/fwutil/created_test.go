package fwutil

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func TestFirewallsCreated(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	fw := func(name string, created *metav1.Condition) *v2.Firewall {
		f := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if created != nil {
			created.Type = v2.ConditionCreated
			f.Status.Conditions = []metav1.Condition{*created}
		}
		return f
	}
	ok := func() *metav1.Condition {
		return &metav1.Condition{Status: metav1.ConditionTrue, Reason: v2.ReasonCreated}
	}
	allocating := func() *metav1.Condition {
		return &metav1.Condition{Status: metav1.ConditionFalse, Reason: v2.ReasonAllocating, Message: "allocating a machine"}
	}
	failed := func(at time.Duration, msg string) *metav1.Condition {
		return &metav1.Condition{Status: metav1.ConditionFalse, Reason: v2.ReasonAllocationFailed, Message: msg, LastTransitionTime: metav1.NewTime(t0.Add(at))}
	}
	gone := func(f *v2.Firewall) *v2.Firewall { now := metav1.NewTime(t0); f.DeletionTimestamp = &now; return f }

	for _, tc := range []struct {
		name      string
		firewalls []*v2.Firewall
		status    metav1.ConditionStatus
		reason    string
		message   string
	}{
		{"no firewalls", nil, metav1.ConditionTrue, v2.ReasonFirewallsCreated, "0 of 0 firewalls have a machine"},
		{"all created", []*v2.Firewall{fw("a", ok()), fw("b", ok())}, metav1.ConditionTrue, v2.ReasonFirewallsCreated, "2 of 2 firewalls have a machine"},
		{"one without any condition yet", []*v2.Firewall{fw("a", ok()), fw("b", nil)}, metav1.ConditionFalse, v2.ReasonAllocating, "1 of 2 firewalls have a machine"},
		{"one allocating", []*v2.Firewall{fw("a", allocating())}, metav1.ConditionFalse, v2.ReasonAllocating, "0 of 1 firewalls have a machine"},
		{"an allocation error is named with its firewall",
			[]*v2.Firewall{fw("a", ok()), fw("b", failed(0, "metal-api allocation failed: metal-api firewall-allocate: 422 Unprocessable Entity: no machine available"))},
			metav1.ConditionFalse, v2.ReasonAllocationFailed, "firewall b: metal-api allocation failed: metal-api firewall-allocate: 422 Unprocessable Entity: no machine available"},
		{"the newest of several errors, the others by name",
			[]*v2.Firewall{fw("c", failed(time.Second, "old 404")), fw("a", failed(time.Minute, "new 403")), fw("b", failed(0, "older"))},
			metav1.ConditionFalse, v2.ReasonAllocationFailed, "firewall a: new 403 (allocation failed for 2 more: b, c)"},
		{"same time: the first by name", []*v2.Firewall{fw("b", failed(0, "x")), fw("a", failed(0, "y"))},
			metav1.ConditionFalse, v2.ReasonAllocationFailed, "firewall a: y (allocation failed for 1 more: b)"},
		{"an error wins over allocating ones", []*v2.Firewall{fw("a", allocating()), fw("b", failed(0, "wrong project"))},
			metav1.ConditionFalse, v2.ReasonAllocationFailed, "firewall b: wrong project"},
		{"firewalls being deleted do not count", []*v2.Firewall{gone(fw("a", failed(0, "x"))), fw("b", ok())},
			metav1.ConditionTrue, v2.ReasonFirewallsCreated, "1 of 1 firewalls have a machine"},
		{"a multi-line error page becomes one line", []*v2.Firewall{fw("a", failed(0, "502:\n<html>\n\t<body>bad gateway</body>\n</html>"))},
			metav1.ConditionFalse, v2.ReasonAllocationFailed, "firewall a: 502: <html> <body>bad gateway</body> </html>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FirewallsCreated(tc.firewalls)
			if got.Type != v2.ConditionFirewallsCreated || got.Status != tc.status || got.Reason != tc.reason || got.Message != tc.message {
				t.Errorf("got %s=%s %s %q, want %s %s %q", got.Type, got.Status, got.Reason, got.Message, tc.status, tc.reason, tc.message)
			}
		})
	}
}

func TestSanitizeErrorCutsLongMessages(t *testing.T) {
	got := SanitizeError(strings.Repeat("é", 1000))
	if n := len([]rune(got)); n != maxErrorMessage+1 || !strings.HasSuffix(got, "…") {
		t.Errorf("got %d runes (%q...), want %d and an ellipsis", n, got[:10], maxErrorMessage+1)
	}
	if got := SanitizeError("a\x00b\r\nc  d"); got != "a b c d" {
		t.Errorf("got %q", got)
	}
}

func TestDeploymentFirewallsCreated(t *testing.T) {
	set := func(name string, cond *metav1.Condition) *v2.FirewallSet {
		s := &v2.FirewallSet{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if cond != nil {
			cond.Type = v2.ConditionFirewallsCreated
			s.Status.Conditions = []metav1.Condition{*cond}
		}
		return s
	}
	ok := func() *metav1.Condition {
		return &metav1.Condition{Status: metav1.ConditionTrue, Reason: v2.ReasonFirewallsCreated}
	}
	allocating := func(msg string) *metav1.Condition {
		return &metav1.Condition{Status: metav1.ConditionFalse, Reason: v2.ReasonAllocating, Message: msg}
	}
	failed := func(msg string) *metav1.Condition {
		return &metav1.Condition{Status: metav1.ConditionFalse, Reason: v2.ReasonAllocationFailed, Message: msg}
	}
	deleting := func(s *v2.FirewallSet) *v2.FirewallSet { now := metav1.Now(); s.DeletionTimestamp = &now; return s }

	for _, tc := range []struct {
		name    string
		sets    []*v2.FirewallSet // by revision, newest last
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"no sets", nil, metav1.ConditionTrue, v2.ReasonFirewallsCreated, "every firewall has its machine"},
		{"a set not reconciled yet", []*v2.FirewallSet{set("a", nil)}, metav1.ConditionTrue, v2.ReasonFirewallsCreated, "every firewall has its machine"},
		{"all created", []*v2.FirewallSet{set("a", ok()), set("b", ok())}, metav1.ConditionTrue, v2.ReasonFirewallsCreated, "every firewall has its machine"},
		{"the new set allocates", []*v2.FirewallSet{set("a", ok()), set("b", allocating("0 of 1 firewalls have a machine"))},
			metav1.ConditionFalse, v2.ReasonAllocating, "set b: 0 of 1 firewalls have a machine"},
		{"the new set's error", []*v2.FirewallSet{set("a", ok()), set("b", failed("firewall b-1: 404"))},
			metav1.ConditionFalse, v2.ReasonAllocationFailed, "set b: firewall b-1: 404"},
		{"an old set's error wins over the new set allocating", []*v2.FirewallSet{set("a", failed("firewall a-1: 422")), set("b", allocating("0 of 1"))},
			metav1.ConditionFalse, v2.ReasonAllocationFailed, "set a: firewall a-1: 422"},
		{"the newest set's error first", []*v2.FirewallSet{set("a", failed("old")), set("b", failed("new"))},
			metav1.ConditionFalse, v2.ReasonAllocationFailed, "set b: new"},
		{"a set being deleted does not count", []*v2.FirewallSet{deleting(set("a", failed("old"))), set("b", ok())},
			metav1.ConditionTrue, v2.ReasonFirewallsCreated, "every firewall has its machine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DeploymentFirewallsCreated(tc.sets)
			if got.Status != tc.status || got.Reason != tc.reason || got.Message != tc.message {
				t.Errorf("got %s %s %q, want %s %s %q", got.Status, got.Reason, got.Message, tc.status, tc.reason, tc.message)
			}
		})
	}
}
