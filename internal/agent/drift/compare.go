// Package drift notices when the kernel's table no longer holds what the agent applied
// (someone ran `nft` by hand: a rule deleted or added, an element added, a chain flushed,
// the table deleted), reports it and, unless told not to, repairs it through the normal
// apply path.
//
// The comparison (Compare) is a pure function of two nft.TableState values: the one the
// last applied ruleset compiles to (nft.Expected) and the one the kernel lists
// (nft.Netlink.Observe). The contents of timeout sets are never compared: the DNS proxy
// fills them at run time and their elements expire, which is not drift.
package drift

import (
	"fmt"
	"slices"
	"strings"

	"github.com/palisade-fw/palisade/internal/agent/nft"
)

// Difference is one way the kernel's table differs from the applied ruleset.
type Difference struct {
	Kind string // table, chain, set, map, counter
	Name string
	What string
}

func (d Difference) String() string {
	if d.Kind == "table" {
		return "table " + d.What
	}
	return d.Kind + " " + d.Name + ": " + d.What
}

// maxText bounds a rule or element quoted in a difference.
const maxText = 80

// Compare lists how observed differs from want, in a stable order: the table, then chains,
// sets and maps, counters, each by name.
func Compare(want, observed nft.TableState) []Difference {
	if !observed.Exists {
		if !want.Exists {
			return nil
		}
		return []Difference{{Kind: "table", What: "missing"}}
	}
	var out []Difference
	gotChains := map[string]nft.ChainState{}
	for _, c := range observed.Chains {
		gotChains[c.Name] = c
	}
	wantChains := map[string]bool{}
	for _, w := range want.Chains {
		wantChains[w.Name] = true
		g, ok := gotChains[w.Name]
		if !ok {
			out = append(out, Difference{Kind: "chain", Name: w.Name, What: "missing"})
			continue
		}
		if g.Base != w.Base {
			out = append(out, Difference{Kind: "chain", Name: w.Name, What: "hook, type, priority or policy changed"})
		}
		if what := compareRules(w.Rules, g.Rules); what != "" {
			out = append(out, Difference{Kind: "chain", Name: w.Name, What: what})
		}
	}
	for _, g := range observed.Chains {
		if !wantChains[g.Name] {
			out = append(out, Difference{Kind: "chain", Name: g.Name, What: "not in the applied ruleset"})
		}
	}

	gotSets := map[string]nft.SetState{}
	for _, s := range observed.Sets {
		gotSets[s.Name] = s
	}
	wantSets := map[string]bool{}
	var setDiffs []Difference
	for _, w := range want.Sets {
		wantSets[w.Name] = true
		kind := setKind(w)
		g, ok := gotSets[w.Name]
		switch {
		case !ok:
			setDiffs = append(setDiffs, Difference{Kind: kind, Name: w.Name, What: "missing"})
		case g.Definition != w.Definition || g.Map != w.Map:
			setDiffs = append(setDiffs, Difference{Kind: kind, Name: w.Name, What: "definition changed"})
		case !w.Dynamic:
			if what := compareElements(w.Elements, g.Elements); what != "" {
				setDiffs = append(setDiffs, Difference{Kind: kind, Name: w.Name, What: what})
			}
		}
	}
	for _, g := range observed.Sets {
		if !wantSets[g.Name] {
			setDiffs = append(setDiffs, Difference{Kind: setKind(g), Name: g.Name, What: "not in the applied ruleset"})
		}
	}
	slices.SortStableFunc(setDiffs, func(a, b Difference) int { return strings.Compare(a.Name, b.Name) })
	out = append(out, setDiffs...)

	missing, extra := difference(want.Counters, observed.Counters)
	for _, n := range missing {
		out = append(out, Difference{Kind: "counter", Name: n, What: "missing"})
	}
	for _, n := range extra {
		out = append(out, Difference{Kind: "counter", Name: n, What: "not in the applied ruleset"})
	}
	return out
}

func setKind(s nft.SetState) string {
	if s.Map {
		return "map"
	}
	return "set"
}

// compareRules describes how a chain's rules differ ("" when they are the same, in order).
func compareRules(want, got []nft.RuleState) string {
	if slices.EqualFunc(want, got, func(a, b nft.RuleState) bool { return a.Key == b.Key }) {
		return ""
	}
	count := map[string]int{}
	for _, r := range got {
		count[r.Key]++
	}
	var missing []string
	for _, r := range want {
		if count[r.Key] > 0 {
			count[r.Key]--
			continue
		}
		missing = append(missing, r.Text)
	}
	unexpected := 0
	for _, n := range count {
		unexpected += n
	}
	if len(missing) == 0 && unexpected == 0 {
		return fmt.Sprintf("%d rules in another order", len(want))
	}
	parts := []string{fmt.Sprintf("%d rules, expected %d", len(got), len(want))}
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d missing (first: %s)", len(missing), quote(missing[0])))
	}
	if unexpected > 0 {
		parts = append(parts, fmt.Sprintf("%d not in the applied ruleset", unexpected))
	}
	return strings.Join(parts, ", ")
}

// compareElements describes how a static set's elements differ, in any order.
func compareElements(want, got []nft.ElementState) string {
	count := map[string]int{}
	for _, e := range got {
		count[e.Key]++
	}
	missing, firstMissing := 0, ""
	for _, e := range want {
		if count[e.Key] > 0 {
			count[e.Key]--
			continue
		}
		missing++
		if firstMissing == "" {
			firstMissing = e.Text
		}
	}
	unexpected := 0
	for _, n := range count {
		unexpected += n
	}
	if missing == 0 && unexpected == 0 {
		return ""
	}
	var parts []string
	if missing > 0 {
		p := fmt.Sprintf("%d elements missing", missing)
		if firstMissing != "" {
			p += " (first: " + quote(firstMissing) + ")"
		}
		parts = append(parts, p)
	}
	if unexpected > 0 {
		parts = append(parts, fmt.Sprintf("%d elements not in the applied ruleset", unexpected))
	}
	return strings.Join(parts, ", ")
}

// difference returns the names only in want and only in got, sorted.
func difference(want, got []string) (missing, extra []string) {
	w, g := map[string]bool{}, map[string]bool{}
	for _, n := range want {
		w[n] = true
	}
	for _, n := range got {
		g[n] = true
		if !w[n] {
			extra = append(extra, n)
		}
	}
	for _, n := range want {
		if !g[n] {
			missing = append(missing, n)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}

func quote(s string) string {
	if len(s) > maxText {
		s = s[:maxText] + "..."
	}
	return "`" + s + "`"
}

// maxSummary bounds Summary's text (it goes into the status message and the condition).
const maxSummary = 512

// Summary is a short description of diffs for a condition message: the first few, and how
// many more there are.
func Summary(diffs []Difference) string {
	var b strings.Builder
	for i, d := range diffs {
		s := d.String()
		if i > 0 {
			s = "; " + s
		}
		if b.Len()+len(s) > maxSummary || i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(diffs)-i)
			break
		}
		b.WriteString(s)
	}
	return b.String()
}
