package firewalldeployment

import (
	"slices"
	"strings"
	"testing"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

const (
	staged   = v2.FirewallRollingUpdateSetDistance
	shortest = v2.FirewallShortestDistance
)

// live is a set carrying traffic: promoted, all replicas ready at the shortest distance.
func live(name string, rev int, hash string, replicas int) SetState {
	return SetState{Name: name, Revision: rev, Hash: hash, Replicas: replicas, Ready: replicas, Firewalls: replicas, Observed: true, Promoted: true}
}

// rolling is a target that is not ready yet, at the staged distance.
func rolling(name string, rev int, hash string, replicas, ready int) SetState {
	return SetState{Name: name, Revision: rev, Hash: hash, Replicas: replicas, Ready: ready, Firewalls: replicas, Observed: true, Distance: staged}
}

// history is a promoted set scaled to zero with no firewall left.
func history(name string, rev int, hash string) SetState {
	return SetState{Name: name, Revision: rev, Hash: hash, Observed: true, Promoted: true}
}

func deleting(s SetState) SetState { s.Deleting = true; return s }

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    PlanInput
		want  []string
		phase Phase
	}{
		{
			name:  "a new deployment gets its first set at the shortest distance",
			in:    PlanInput{Replicas: 2, WantHash: "a"},
			want:  []string{"Create(rev 0, 2 replicas, distance 0)"},
			phase: PhaseCreating,
		},
		{
			name: "the first set is promoted once ready",
			in: PlanInput{Replicas: 1, WantHash: "a", Sets: []SetState{
				{Name: "s0", Hash: "a", Replicas: 1, Ready: 1, Firewalls: 1, Observed: true}}},
			want:  []string{"UpdateTarget(s0, rev 0, 1 replicas, distance 0)", "Promote(s0)"},
			phase: PhaseComplete,
		},
		{
			name:  "a steady deployment needs nothing but the in-place sync",
			in:    PlanInput{Replicas: 1, WantHash: "a", Sets: []SetState{live("s0", 0, "a", 1)}},
			want:  []string{"UpdateTarget(s0, rev 0, 1 replicas, distance 0)"},
			phase: PhaseComplete,
		},
		{
			name:  "a replica change is applied to the target in place",
			in:    PlanInput{Replicas: 3, WantHash: "a", Sets: []SetState{live("s0", 0, "a", 1)}},
			want:  []string{"UpdateTarget(s0, rev 0, 3 replicas, distance 0)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name:  "an image change creates a staged set",
			in:    PlanInput{Replicas: 1, WantHash: "b", Sets: []SetState{live("s0", 0, "a", 1)}},
			want:  []string{"Create(rev 1, 1 replicas, distance 3)"},
			phase: PhaseCreating,
		},
		{
			name:  "a roll request creates a set although the template is the same",
			in:    PlanInput{Replicas: 1, WantHash: "a", RollRequested: "roll requested", Sets: []SetState{live("s0", 0, "a", 1)}},
			want:  []string{"Create(rev 1, 1 replicas, distance 3)"},
			phase: PhaseCreating,
		},
		{
			name: "during the roll the carrier is kept and the target stays staged",
			in: PlanInput{Replicas: 1, WantHash: "b", Sets: []SetState{
				live("s0", 0, "a", 1), rolling("s1", 1, "b", 1, 0)}},
			want:  []string{"UpdateTarget(s1, rev 1, 1 replicas, distance 3)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "limit 0: the ready target retires the old set by deleting it",
			in: PlanInput{Replicas: 1, WantHash: "b", Sets: []SetState{
				live("s0", 0, "a", 1), rolling("s1", 1, "b", 1, 1)}},
			want:  []string{"UpdateTarget(s1, rev 1, 1 replicas, distance 3)", "Delete(s0)"},
			phase: PhaseRetiring,
		},
		{
			name: "limit 0: the target is promoted while the old set is still being freed",
			in: PlanInput{Replicas: 1, WantHash: "b", Sets: []SetState{
				deleting(live("s0", 0, "a", 1)), rolling("s1", 1, "b", 1, 1)}},
			want:  []string{"UpdateTarget(s1, rev 1, 1 replicas, distance 0)", "Promote(s1)"},
			phase: PhaseComplete,
		},
		{
			name: "limit 1: the ready target scales the old set into history",
			in: PlanInput{Replicas: 1, HistoryLimit: 1, WantHash: "b", Sets: []SetState{
				live("s0", 0, "a", 1), rolling("s1", 1, "b", 1, 1)}},
			want:  []string{"UpdateTarget(s1, rev 1, 1 replicas, distance 3)", "Scale(s0, 0)"},
			phase: PhaseRetiring,
		},
		{
			name: "limit 1: the target is promoted once the history set is empty",
			in: PlanInput{Replicas: 1, HistoryLimit: 1, WantHash: "b", Sets: []SetState{
				history("s0", 0, "a"), rolling("s1", 1, "b", 1, 1)}},
			want:  []string{"UpdateTarget(s1, rev 1, 1 replicas, distance 0)", "Promote(s1)"},
			phase: PhaseComplete,
		},
		{
			name: "limit 1: the next change keeps the live set, not the history set (issue 12 item 1)",
			in: PlanInput{Replicas: 1, HistoryLimit: 1, WantHash: "c", Sets: []SetState{
				history("s0", 0, "a"), live("s1", 1, "b", 1), rolling("s2", 2, "c", 1, 0)}},
			want:  []string{"UpdateTarget(s2, rev 2, 1 replicas, distance 3)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "limit 1: when that roll completes the older history set goes",
			in: PlanInput{Replicas: 1, HistoryLimit: 1, WantHash: "c", Sets: []SetState{
				history("s0", 0, "a"), live("s1", 1, "b", 1), rolling("s2", 2, "c", 1, 1)}},
			want:  []string{"UpdateTarget(s2, rev 2, 1 replicas, distance 3)", "Delete(s0)", "Scale(s1, 0)"},
			phase: PhaseRetiring,
		},
		{
			name: "limit 3: history beyond the limit goes, oldest first",
			in: PlanInput{Replicas: 1, HistoryLimit: 3, WantHash: "e", Sets: []SetState{
				history("s0", 0, "a"), history("s1", 1, "b"), history("s2", 2, "c"), live("s3", 3, "d", 1), rolling("s4", 4, "e", 1, 1)}},
			want:  []string{"UpdateTarget(s4, rev 4, 1 replicas, distance 3)", "Delete(s0)", "Scale(s3, 0)"},
			phase: PhaseRetiring,
		},
		{
			name: "limit 3: nothing is deleted while the target is not ready",
			in: PlanInput{Replicas: 1, HistoryLimit: 3, WantHash: "e", Sets: []SetState{
				history("s0", 0, "a"), history("s1", 1, "b"), history("s2", 2, "c"), live("s3", 3, "d", 1), rolling("s4", 4, "e", 1, 0)}},
			want:  []string{"UpdateTarget(s4, rev 4, 1 replicas, distance 3)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "a change during a roll creates a staged set and keeps the carrier",
			in: PlanInput{Replicas: 1, WantHash: "c", Sets: []SetState{
				live("s0", 0, "a", 1), rolling("s1", 1, "b", 1, 0)}},
			want:  []string{"Create(rev 2, 1 replicas, distance 3)"},
			phase: PhaseCreating,
		},
		{
			name: "the intermediate set that never got ready goes, even with history room",
			in: PlanInput{Replicas: 1, HistoryLimit: 3, WantHash: "c", Sets: []SetState{
				live("s0", 0, "a", 1), rolling("s1", 1, "b", 1, 0), rolling("s2", 2, "c", 1, 0)}},
			want:  []string{"UpdateTarget(s2, rev 2, 1 replicas, distance 3)", "Delete(s1)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "rapid changes keep the newest ready old set, not the oldest",
			in: PlanInput{Replicas: 1, HistoryLimit: 1, WantHash: "c", Sets: []SetState{
				live("s0", 0, "a", 1), rolling("s1", 1, "b", 1, 1), rolling("s2", 2, "c", 1, 0)}},
			want:  []string{"UpdateTarget(s2, rev 2, 1 replicas, distance 3)", "Promote(s1)", "Scale(s0, 0)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "a partly ready intermediate set goes while the promoted carrier stays",
			in: PlanInput{Replicas: 2, WantHash: "c", Sets: []SetState{
				live("s0", 0, "a", 2), rolling("s1", 1, "b", 2, 1), rolling("s2", 2, "c", 2, 0)}},
			want:  []string{"UpdateTarget(s2, rev 2, 2 replicas, distance 3)", "Delete(s1)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "with nothing ready anywhere the newest old set with firewalls stays until the target is ready",
			in: PlanInput{Replicas: 1, WantHash: "c", Sets: []SetState{
				rolling("s0", 0, "a", 1, 0), rolling("s1", 1, "b", 1, 0), rolling("s2", 2, "c", 1, 0)}},
			want:  []string{"UpdateTarget(s2, rev 2, 1 replicas, distance 3)", "Delete(s0)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "... and goes once the target is ready",
			in: PlanInput{Replicas: 1, WantHash: "b", Sets: []SetState{
				rolling("s0", 0, "a", 1, 0), rolling("s1", 1, "b", 1, 1)}},
			want:  []string{"UpdateTarget(s1, rev 1, 1 replicas, distance 3)", "Delete(s0)"},
			phase: PhaseRetiring,
		},
		{
			name: "a change while the old set is still being freed keeps the live set (issue 12 item 1)",
			in: PlanInput{Replicas: 1, WantHash: "c", Sets: []SetState{
				deleting(live("s0", 0, "a", 1)), live("s1", 1, "b", 1)}},
			want:  []string{"Create(rev 2, 1 replicas, distance 3)"},
			phase: PhaseCreating,
		},
		{
			name: "... and during that roll the being-freed set is left alone",
			in: PlanInput{Replicas: 1, WantHash: "c", Sets: []SetState{
				deleting(live("s0", 0, "a", 1)), live("s1", 1, "b", 1), rolling("s2", 2, "c", 1, 0)}},
			want:  []string{"UpdateTarget(s2, rev 2, 1 replicas, distance 3)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "a target whose status lags its spec is not ready",
			in: PlanInput{Replicas: 1, WantHash: "b", Sets: []SetState{
				live("s0", 0, "a", 1), {Name: "s1", Revision: 1, Hash: "b", Replicas: 1, Ready: 1, Firewalls: 1, Distance: staged}}},
			want:  []string{"UpdateTarget(s1, rev 1, 1 replicas, distance 3)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "rollback: a history set with the wanted template comes back under the next revision",
			in: PlanInput{Replicas: 1, HistoryLimit: 1, WantHash: "a", Sets: []SetState{
				history("s0", 0, "a"), live("s1", 1, "b", 1)}},
			want:  []string{"UpdateTarget(s0, rev 2, 1 replicas, distance 3, demote)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "rollback: once the history set is ready the live set retires into history",
			in: PlanInput{Replicas: 1, HistoryLimit: 1, WantHash: "a", Sets: []SetState{
				rolling("s0", 2, "a", 1, 1), live("s1", 1, "b", 1)}},
			want:  []string{"UpdateTarget(s0, rev 2, 1 replicas, distance 3)", "Scale(s1, 0)"},
			phase: PhaseRetiring,
		},
		{
			name: "a change reverted during the roll goes back to the live set and drops the new one",
			in: PlanInput{Replicas: 1, WantHash: "a", Sets: []SetState{
				live("s0", 0, "a", 1), rolling("s1", 1, "b", 1, 0)}},
			want:  []string{"UpdateTarget(s0, rev 2, 1 replicas, distance 0)", "Delete(s1)"},
			phase: PhaseRetiring,
		},
		{
			name:  "recreate: an image change creates the set at zero replicas",
			in:    PlanInput{Strategy: v2.StrategyRecreate, Replicas: 1, WantHash: "b", Sets: []SetState{live("s0", 0, "a", 1)}},
			want:  []string{"Create(rev 1, 0 replicas, distance 0)"},
			phase: PhaseCreating,
		},
		{
			name: "recreate: the old set goes first",
			in: PlanInput{Strategy: v2.StrategyRecreate, Replicas: 1, WantHash: "b", Sets: []SetState{
				live("s0", 0, "a", 1), {Name: "s1", Revision: 1, Hash: "b", Observed: true}}},
			want:  []string{"UpdateTarget(s1, rev 1, 0 replicas, distance 0)", "Delete(s0)"},
			phase: PhaseRetiring,
		},
		{
			name: "recreate: a set still being freed holds the new one back",
			in: PlanInput{Strategy: v2.StrategyRecreate, Replicas: 1, WantHash: "b", Sets: []SetState{
				deleting(live("s0", 0, "a", 1)), {Name: "s1", Revision: 1, Hash: "b", Observed: true}}},
			want:  []string{"UpdateTarget(s1, rev 1, 0 replicas, distance 0)"},
			phase: PhaseRetiring,
		},
		{
			name: "recreate: with the old machines freed the new set scales up",
			in: PlanInput{Strategy: v2.StrategyRecreate, Replicas: 1, HistoryLimit: 1, WantHash: "b", Sets: []SetState{
				history("s0", 0, "a"), {Name: "s1", Revision: 1, Hash: "b", Observed: true}}},
			want:  []string{"UpdateTarget(s1, rev 1, 1 replicas, distance 0)"},
			phase: PhaseWaitingForTarget,
		},
		{
			name: "recreate: the ready set is promoted",
			in: PlanInput{Strategy: v2.StrategyRecreate, Replicas: 1, HistoryLimit: 1, WantHash: "b", Sets: []SetState{
				history("s0", 0, "a"), {Name: "s1", Revision: 1, Hash: "b", Replicas: 1, Ready: 1, Firewalls: 1, Observed: true}}},
			want:  []string{"UpdateTarget(s1, rev 1, 1 replicas, distance 0)", "Promote(s1)"},
			phase: PhaseComplete,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.Strategy == "" {
				tc.in.Strategy = v2.StrategyRollingUpdate
			}
			p := Plan(tc.in)
			var got []string
			for _, a := range p.Actions {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("actions\n got: %s\nwant: %s", strings.Join(got, ", "), strings.Join(tc.want, ", "))
			}
			if p.Phase != tc.phase {
				t.Errorf("phase %s, want %s (%s)", p.Phase, tc.phase, p.Message)
			}
		})
	}
}

// TestPlanNeverDropsTheCarrier walks every rollout state of up to four sets and checks the
// core promise: while the target is not ready, no set with a ready firewall that the plan
// keeps is deleted or scaled down unless a newer ready set stays.
func TestPlanNeverDropsTheCarrier(t *testing.T) {
	kinds := []func(name string, rev int, hash string) SetState{
		func(n string, r int, h string) SetState { return live(n, r, h, 1) },
		func(n string, r int, h string) SetState { return rolling(n, r, h, 1, 0) },
		func(n string, r int, h string) SetState { return rolling(n, r, h, 1, 1) },
		history,
		func(n string, r int, h string) SetState { return deleting(live(n, r, h, 1)) },
	}
	var walk func(sets []SetState)
	checked := 0
	walk = func(sets []SetState) {
		if len(sets) > 0 {
			for _, limit := range []int{0, 1, 3} {
				for _, want := range []string{"h0", "h1", "new"} {
					checkCarrier(t, PlanInput{Strategy: v2.StrategyRollingUpdate, Replicas: 1, HistoryLimit: limit, WantHash: want, Sets: sets})
					checked++
				}
			}
		}
		if len(sets) == 4 {
			return
		}
		for _, k := range kinds {
			n := len(sets)
			walk(append(slices.Clone(sets), k("s"+string(rune('0'+n)), n, "h"+string(rune('0'+n)))))
		}
	}
	walk(nil)
	t.Logf("checked %d states", checked)
}

func checkCarrier(t *testing.T, in PlanInput) {
	t.Helper()
	p := Plan(in)
	removed := map[string]bool{}
	for _, a := range p.Actions {
		if a.Kind == ActionDelete || a.Kind == ActionScale && a.Replicas == 0 {
			removed[a.Set] = true
		}
	}
	readyBefore, readyAfter := 0, 0
	for _, s := range in.Sets {
		if s.Deleting {
			continue
		}
		readyBefore += s.Ready
		if !removed[s.Name] {
			readyAfter += s.Ready
		}
	}
	if readyBefore > 0 && readyAfter == 0 {
		t.Errorf("plan %v leaves no ready firewall of %+v", p.Actions, in.Sets)
	}
}
