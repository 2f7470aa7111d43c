package drift

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/nft"
)

func rules(keys ...string) []nft.RuleState {
	var out []nft.RuleState
	for _, k := range keys {
		out = append(out, nft.RuleState{Key: k, Text: "rule " + k})
	}
	return out
}

func elems(keys ...string) []nft.ElementState {
	var out []nft.ElementState
	for _, k := range keys {
		out = append(out, nft.ElementState{Key: k, Text: "elem " + k})
	}
	return out
}

// applied is a small table: a base chain, a regular chain, a static set, a map, a timeout
// set (the DNS proxy's) and two counters.
func applied() nft.TableState {
	return nft.TableState{
		Exists: true,
		Chains: []nft.ChainState{
			{Name: "forward", Base: "type filter hook 2 priority 1 policy 0", Rules: rules("a", "b", "c")},
			{Name: "cwnp-x", Rules: rules("d")},
		},
		Sets: []nft.SetState{
			{Name: "cluster_v4", Definition: "interval", Elements: elems("10.1.0.0", "10.1.1.0 end")},
			{Name: "cwnp_egress_v4", Map: true, Definition: "concat map", Elements: elems("k1", "k2")},
			{Name: "fqdn-abc_v4", Definition: "timeout", Dynamic: true},
		},
		Counters: []string{"accept_established", "drop_total"},
	}
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*nft.TableState)
		want   []string
	}{
		{"same", func(*nft.TableState) {}, nil},
		{"listing order of objects and elements does not matter", func(s *nft.TableState) {
			slices.Reverse(s.Chains)
			slices.Reverse(s.Sets)
			slices.Reverse(s.Sets[1].Elements)
			slices.Reverse(s.Counters)
		}, nil},
		{"DNS-learned elements in a timeout set are not drift", func(s *nft.TableState) {
			s.Sets[2].Elements = elems("140.82.112.3", "140.82.112.4")
		}, nil},
		{"table deleted", func(s *nft.TableState) { *s = nft.TableState{} }, []string{"table missing"}},
		{"rule deleted", func(s *nft.TableState) { s.Chains[0].Rules = rules("a", "c") },
			[]string{"chain forward: 2 rules, expected 3, 1 missing (first: `rule b`)"}},
		{"rule added", func(s *nft.TableState) { s.Chains[0].Rules = rules("x", "a", "b", "c") },
			[]string{"chain forward: 4 rules, expected 3, 1 not in the applied ruleset"}},
		{"rule replaced", func(s *nft.TableState) { s.Chains[0].Rules = rules("a", "x", "c") },
			[]string{"chain forward: 3 rules, expected 3, 1 missing (first: `rule b`), 1 not in the applied ruleset"}},
		{"rules reordered", func(s *nft.TableState) { s.Chains[0].Rules = rules("c", "b", "a") },
			[]string{"chain forward: 3 rules in another order"}},
		{"chain flushed", func(s *nft.TableState) { s.Chains[0].Rules = nil },
			[]string{"chain forward: 0 rules, expected 3, 3 missing (first: `rule a`)"}},
		{"chain deleted and one added", func(s *nft.TableState) {
			s.Chains[1] = nft.ChainState{Name: "mine"}
		}, []string{"chain cwnp-x: missing", "chain mine: not in the applied ruleset"}},
		{"policy changed", func(s *nft.TableState) { s.Chains[0].Base = "type filter hook 2 priority 1 policy 1" },
			[]string{"chain forward: hook, type, priority or policy changed"}},
		{"element added to a static set", func(s *nft.TableState) {
			s.Sets[0].Elements = append(s.Sets[0].Elements, elems("203.0.113.9")...)
		}, []string{"set cluster_v4: 1 elements not in the applied ruleset"}},
		{"element removed from a map", func(s *nft.TableState) { s.Sets[1].Elements = elems("k2") },
			[]string{"map cwnp_egress_v4: 1 elements missing (first: `elem k1`)"}},
		{"timeout set deleted", func(s *nft.TableState) { s.Sets = s.Sets[:2] }, []string{"set fqdn-abc_v4: missing"}},
		{"set recreated with other flags", func(s *nft.TableState) { s.Sets[0].Definition = "plain" },
			[]string{"set cluster_v4: definition changed"}},
		{"set added", func(s *nft.TableState) { s.Sets = append(s.Sets, nft.SetState{Name: "aaa"}) },
			[]string{"set aaa: not in the applied ruleset"}},
		{"counter deleted, another added", func(s *nft.TableState) { s.Counters = []string{"accept_established", "mine"} },
			[]string{"counter drop_total: missing", "counter mine: not in the applied ruleset"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			observed := applied()
			tc.change(&observed)
			var got []string
			for _, d := range Compare(applied(), observed) {
				got = append(got, d.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestSummaryIsBounded(t *testing.T) {
	var diffs []Difference
	for range 40 {
		diffs = append(diffs, Difference{Kind: "chain", Name: strings.Repeat("c", 60), What: "missing"})
	}
	s := Summary(diffs)
	if len(s) > maxSummary+32 || !strings.HasSuffix(s, "; and 35 more") {
		t.Errorf("summary (%d): %s", len(s), s)
	}
	if got := quote(strings.Repeat("x", 200)); len(got) > maxText+8 {
		t.Errorf("quoted rule not shortened: %d", len(got))
	}
}

func TestCondition(t *testing.T) {
	diffs := []Difference{{Kind: "table", What: "missing"}}
	for _, tc := range []struct {
		name   string
		st     Status
		status metav1.ConditionStatus
		reason string
		msg    string
	}{
		{"nothing applied", Status{}, metav1.ConditionUnknown, ReasonNothingApplied, "no ruleset"},
		{"in sync", Status{Known: true}, metav1.ConditionTrue, ReasonInSync, "holds the applied ruleset"},
		{"drifted, repairing", Status{Known: true, Differences: diffs, Repairing: true}, metav1.ConditionFalse, ReasonDrifted, "table missing; repairing"},
		{"drifted, report only", Status{Known: true, Differences: diffs}, metav1.ConditionFalse, ReasonDrifted, "not repaired (nftables.repairDrift is false)"},
		{"repaired", Status{Known: true, LastRepair: "table missing"}, metav1.ConditionTrue, ReasonInSync, "last repaired: table missing"},
		{"check failed", Status{Known: true, Err: errString("netlink: permission denied")}, metav1.ConditionUnknown, ReasonCheckFailed, "permission denied"},
	} {
		c := Condition(tc.st)
		if c.Type != ConditionRulesetInSync || c.Status != tc.status || c.Reason != tc.reason || !strings.Contains(c.Message, tc.msg) {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// One Warning event when drift is found, one Normal event when it is gone; nothing while
// the outcome stays.
func TestEvents(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	ev := &Events{Recorder: rec, Object: &v2.FirewallMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: "firewall", Name: "fw-1"}}}
	drifted := Status{Known: true, Repairing: true, Differences: []Difference{{Kind: "table", What: "missing"}}}
	for _, st := range []Status{{Known: true}, drifted, drifted, {Known: true, LastRepair: "table missing"}, {Known: true}, {}} {
		ev.Report(st)
	}
	close(rec.Events)
	var got []string
	for e := range rec.Events {
		got = append(got, e)
	}
	want := []string{
		"Warning RulesetDrifted the kernel's table differs from the applied ruleset: table missing; repairing",
		"Normal RulesetInSync the kernel's table holds the applied ruleset; last repaired: table missing",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events %q\nwant %q", got, want)
	}
}
