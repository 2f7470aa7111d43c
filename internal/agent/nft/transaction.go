// Package nft applies rendered rulesets to the kernel: one atomic transaction per change,
// only the difference to what it applied last, never touching other tables, and never
// flushing named counters.
//
// # One kernel path
//
// Every apply, full or incremental, is built as one Batch (an ordered list of operations on
// the agent's table) and committed as one netlink transaction through
// github.com/google/nftables (Netlink.Commit). There is no second path: no nft process, no
// hand-encoded messages. google/nftables was chosen over knftables because knftables drives
// the nft binary: every apply would parse text again and, for a changed map element, nft
// first loads the whole map (~0.1 s at 7,000 elements), and reading the table back costs
// 0.3-0.6 s of JSON; over netlink the same transaction and the read back cost a fraction
// (docs/benchmarks.md). knftables is still used, without any kernel access
// (knftables.NewFake), to format the rule file, which `nft -f` loads at boot.
//
// Rules are rendered as nftables text (internal/agent/ruleset); compileRule turns each into
// the expressions nft would send for it, so the rule file and the kernel hold the same rules
// (TestNetlinkEqualsNft lists both).
//
// # Sequence of an apply
//
//  1. nothing changed (structural comparison with the last applied ruleset): no kernel call;
//  2. otherwise a delta against the last applied ruleset, or, when nothing is known (start,
//     after a failure) or a set changed its definition, a full sync against what the kernel
//     lists (Inventory): stale objects are removed, sets are recreated, chains refilled;
//  3. the batch is committed: all or nothing;
//  4. read back: the table's objects are listed and compared with the ruleset (skipped for a
//     delta that only changes set elements, which the kernel acknowledged atomically);
//  5. only then the rule file is written (in the background, see WaitFile).
//
// A refused transaction leaves the kernel as it was (ApplyError.Kept); a committed one whose
// read back differs says so and the next apply is a full sync.
//
// Named counters are only ever added: they keep their values across every apply, full or
// incremental, for as long as their object exists (ruleset.PolicyCounter and
// ruleset.ServiceCounter name them; Netlink.Counters reads them).
//
// # API for other agent parts
//
//   - Netlink.Counters(ctx): every named counter of the table (packets, bytes), keyed by name;
//     ruleset.PolicyCounter(key) / ruleset.ServiceCounter(key) give the name of an object's
//     counter, stable across applies.
//   - Netlink.AddToSets(ctx, updates): elements (each with its own timeout) for several named
//     sets of the table in one transaction, acknowledged before it returns, on one lasting
//     connection; AddElements / DeleteElements for one set. No ruleset apply is involved. This
//     is how the DNS proxy (dnsproxy.NftSets) fills the per-policy FQDN sets (`flags
//     timeout`): the agent has no other code that talks to the kernel. The
//     sets must be part of the rendered ruleset (rendered without elements), or the next full
//     sync removes them. A full sync keeps a timeout set (ruleset.Set.Timeout) that the kernel
//     already holds, with its elements, so a learned address is never closed by an apply; it
//     recreates every other set empty, whose owner refills it after one
//     (runner.SyncResult.Full). Deltas never touch a set whose rendered elements did not change.
package nft

import (
	"fmt"
	"slices"

	"sigs.k8s.io/knftables"

	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

type opKind uint8

const (
	opAddTable opKind = iota + 1
	opAddCounter
	opDelCounter
	opAddChain
	opFlushChain
	opDelChain
	opAddSet
	opFlushSet
	opDelSet
	opAddRule
	opAddElements
	opDelElements
)

// op is one operation of a batch.
type op struct {
	kind  opKind
	name  string         // counter, chain or set name
	chain *ruleset.Chain // opAddChain
	set   *ruleset.Set   // opAddSet, element ops
	rule  string         // opAddRule (in chain name)
	elems []ruleset.Element
}

// Batch is one transaction on the agent's table, in order.
type Batch struct {
	Table string
	ops   []op
}

// Len is the number of operations.
func (b *Batch) Len() int { return len(b.ops) }

func (b *Batch) add(o op) { b.ops = append(b.ops, o) }

// apply replays the batch on an inventory of names (FakeKernel).
func (b *Batch) apply(inv *Inventory) {
	del := func(list *[]string, name string) {
		*list = slices.DeleteFunc(*list, func(n string) bool { return n == name })
	}
	addUnique := func(list *[]string, name string) {
		if !slices.Contains(*list, name) {
			*list = append(*list, name)
		}
	}
	for _, o := range b.ops {
		switch o.kind {
		case opAddCounter:
			addUnique(&inv.Counters, o.name)
		case opDelCounter:
			del(&inv.Counters, o.name)
		case opAddChain:
			addUnique(&inv.Chains, o.name)
		case opDelChain:
			del(&inv.Chains, o.name)
		case opAddSet:
			if o.set.Map {
				addUnique(&inv.Maps, o.name)
			} else {
				addUnique(&inv.Sets, o.name)
			}
		case opDelSet:
			del(&inv.Maps, o.name)
			del(&inv.Sets, o.name)
		}
	}
}

// fullBatch makes the table hold exactly r, whatever it holds now (existing). Counters that
// exist are kept (their values survive); chains are created or flushed and refilled; sets
// and maps that exist are deleted and created anew rather than flushed (refilling a flushed
// interval map in the same transaction costs the kernel far more), except the timeout sets
// of r, whose learned elements stay (adding an existing set with the same definition changes
// nothing); objects not in r are removed. Order: nothing is deleted while a rule still refers to it.
func fullBatch(r *ruleset.Ruleset, existing Inventory) *Batch {
	b := &Batch{Table: r.Table}
	b.add(op{kind: opAddTable})
	wantChains, _, wantCounters := names(r)
	have := func(list []string) map[string]bool {
		m := make(map[string]bool, len(list))
		for _, n := range list {
			m[n] = true
		}
		return m
	}
	haveChains, haveCounters := have(existing.Chains), have(existing.Counters)
	for _, c := range r.Counters {
		if !haveCounters[c.Name] {
			b.add(op{kind: opAddCounter, name: c.Name})
		}
	}
	for i := range r.Chains {
		c := &r.Chains[i]
		b.add(op{kind: opAddChain, name: c.Name, chain: c})
		if haveChains[c.Name] {
			b.add(op{kind: opFlushChain, name: c.Name})
		}
	}
	for _, name := range existing.Chains {
		if !wantChains[name] {
			b.add(op{kind: opFlushChain, name: name})
		}
	}
	keep := learnedSets(r)
	for _, name := range append(slices.Clone(existing.Sets), existing.Maps...) {
		if !keep[name] {
			b.add(op{kind: opDelSet, name: name})
		}
	}
	for _, name := range existing.Chains {
		if !wantChains[name] {
			b.add(op{kind: opDelChain, name: name})
		}
	}
	for _, name := range existing.Counters {
		if !wantCounters[name] {
			b.add(op{kind: opDelCounter, name: name})
		}
	}
	for i := range r.Sets {
		b.add(op{kind: opAddSet, name: r.Sets[i].Name, set: &r.Sets[i]})
	}
	for i := range r.Chains {
		for _, rule := range r.Chains[i].Rules {
			b.add(op{kind: opAddRule, name: r.Chains[i].Name, rule: rule})
		}
	}
	for i := range r.Sets {
		if len(r.Sets[i].Elements) > 0 {
			b.add(op{kind: opAddElements, name: r.Sets[i].Name, set: &r.Sets[i], elems: r.Sets[i].Elements})
		}
	}
	return b
}

// deltaBatch turns old (what the kernel holds) into r. ok is false when a set or base chain
// changed its definition: then only a full sync can apply r. elementsOnly tells whether
// only set elements change. Order: counters and chains exist before anything refers to
// them, element deletes come before element adds (the kernel refuses overlapping elements),
// chains and counters are removed only after nothing refers to them.
func deltaBatch(old, r *ruleset.Ruleset) (b *Batch, elementsOnly, ok bool) {
	oldChains := map[string]*ruleset.Chain{}
	for i := range old.Chains {
		oldChains[old.Chains[i].Name] = &old.Chains[i]
	}
	oldSets := map[string]*ruleset.Set{}
	for i := range old.Sets {
		oldSets[old.Sets[i].Name] = &old.Sets[i]
	}
	oldCounters := map[string]bool{}
	for _, c := range old.Counters {
		oldCounters[c.Name] = true
	}
	wantChains, wantSets, wantCounters := names(r)
	if old.Table != r.Table {
		return nil, false, false
	}
	for _, s := range old.Sets {
		if !wantSets[s.Name] {
			return nil, false, false
		}
	}
	for _, s := range r.Sets {
		o, found := oldSets[s.Name]
		if !found || o.Type != s.Type || o.Map != s.Map || o.Interval != s.Interval || o.Timeout != s.Timeout || o.Comment != s.Comment {
			return nil, false, false
		}
	}
	for _, c := range r.Chains {
		if o, found := oldChains[c.Name]; found && !sameBase(o.Base, c.Base) {
			return nil, false, false
		}
	}

	b = &Batch{Table: r.Table}
	for _, c := range r.Counters {
		if !oldCounters[c.Name] {
			b.add(op{kind: opAddCounter, name: c.Name})
		}
	}
	for i := range r.Chains {
		if _, found := oldChains[r.Chains[i].Name]; !found {
			b.add(op{kind: opAddChain, name: r.Chains[i].Name, chain: &r.Chains[i]})
		}
	}
	for i := range r.Chains {
		c := &r.Chains[i]
		o, found := oldChains[c.Name]
		switch {
		case !found:
		case !slices.Equal(o.Rules, c.Rules):
			b.add(op{kind: opFlushChain, name: c.Name})
		default:
			continue
		}
		for _, rule := range c.Rules {
			b.add(op{kind: opAddRule, name: c.Name, rule: rule})
		}
	}
	structural := b.Len()
	var adds []op
	for i := range r.Sets {
		s := &r.Sets[i]
		removed, added := diffElements(oldSets[s.Name].Elements, s.Elements)
		if len(removed)+len(added) == 0 {
			continue
		}
		if !isConcat(s) {
			// A single-field interval set holds start and end elements that neighbours
			// share; refilling it is simpler than splitting the difference (these sets are
			// small: prefixes and load-balancer IPs).
			b.add(op{kind: opFlushSet, name: s.Name, set: s})
			if len(s.Elements) > 0 {
				adds = append(adds, op{kind: opAddElements, name: s.Name, set: s, elems: s.Elements})
			}
			continue
		}
		if len(removed) > 0 {
			b.add(op{kind: opDelElements, name: s.Name, set: s, elems: removed})
		}
		if len(added) > 0 {
			adds = append(adds, op{kind: opAddElements, name: s.Name, set: s, elems: added})
		}
	}
	b.ops = append(b.ops, adds...)
	for _, c := range old.Chains {
		if !wantChains[c.Name] {
			b.add(op{kind: opFlushChain, name: c.Name})
			b.add(op{kind: opDelChain, name: c.Name})
			structural++
		}
	}
	for _, c := range old.Counters {
		if !wantCounters[c.Name] {
			b.add(op{kind: opDelCounter, name: c.Name})
			structural++
		}
	}
	return b, structural == 0, true
}

func isConcat(s *ruleset.Set) bool {
	key, _, _ := cutValue(s.Type)
	return len(splitFields(key)) > 1
}

func diffElements(old, want []ruleset.Element) (removed, added []ruleset.Element) {
	// Most sets do not change; comparing in order is far cheaper than building keys.
	same := func(a, b ruleset.Element) bool { return a.Value == b.Value && slices.Equal(a.Key, b.Key) }
	if slices.EqualFunc(old, want, same) {
		return nil, nil
	}
	// The renderer keeps its order: a change leaves a common head and tail that need no
	// lookup.
	for len(old) > 0 && len(want) > 0 && same(old[0], want[0]) {
		old, want = old[1:], want[1:]
	}
	for len(old) > 0 && len(want) > 0 && same(old[len(old)-1], want[len(want)-1]) {
		old, want = old[:len(old)-1], want[:len(want)-1]
	}
	oldSet := make(map[elementID]bool, len(old))
	for _, e := range old {
		oldSet[idOf(e)] = true
	}
	wantSet := make(map[elementID]bool, len(want))
	for _, e := range want {
		id := idOf(e)
		wantSet[id] = true
		if !oldSet[id] {
			added = append(added, e)
		}
	}
	for _, e := range old {
		if !wantSet[idOf(e)] {
			removed = append(removed, e)
		}
	}
	return removed, added
}

// elementID identifies an element without building a string; keys have at most four
// fields (the services map), longer ones fall back to the element's text.
type elementID struct {
	k0, k1, k2, k3, value string
}

func idOf(e ruleset.Element) elementID {
	var id elementID
	switch len(e.Key) {
	case 4:
		id.k3 = e.Key[3]
		fallthrough
	case 3:
		id.k2 = e.Key[2]
		fallthrough
	case 2:
		id.k1 = e.Key[1]
		fallthrough
	case 1:
		id.k0 = e.Key[0]
	default:
		return elementID{k0: e.String()}
	}
	id.value = e.Value
	return id
}

func names(r *ruleset.Ruleset) (chains, sets, counters map[string]bool) {
	chains, sets, counters = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, c := range r.Chains {
		chains[c.Name] = true
	}
	for _, s := range r.Sets {
		sets[s.Name] = true
	}
	for _, c := range r.Counters {
		counters[c.Name] = true
	}
	return chains, sets, counters
}

func sameBase(a, b *ruleset.BaseChain) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Text is the complete ruleset as an `nft -f` file: the rule file. Every chain is flushed
// after it is added, so loading the file over a table that holds these chains does not
// duplicate rules. knftables only formats here; it never runs nft.
func Text(r *ruleset.Ruleset) string {
	tx := knftables.NewFake(knftables.InetFamily, r.Table).NewTransaction()
	tx.Add(&knftables.Table{})
	for _, c := range r.Counters {
		tx.Add(&knftables.Counter{Name: c.Name})
	}
	for _, c := range r.Chains {
		tx.Add(chainObject(c))
		tx.Flush(chainObject(c))
	}
	for _, s := range r.Sets {
		tx.Add(setObject(s))
	}
	for _, c := range r.Chains {
		for _, rule := range c.Rules {
			tx.Add(&knftables.Rule{Chain: c.Name, Rule: rule})
		}
	}
	for _, s := range r.Sets {
		for _, e := range s.Elements {
			tx.Add(elementObject(s, e))
		}
	}
	return tx.String()
}

func chainObject(c ruleset.Chain) *knftables.Chain {
	obj := &knftables.Chain{Name: c.Name}
	if b := c.Base; b != nil {
		obj.Type = knftables.PtrTo(knftables.BaseChainType(b.Type))
		obj.Hook = knftables.PtrTo(knftables.BaseChainHook(b.Hook))
		obj.Priority = knftables.PtrTo(knftables.BaseChainPriority(b.Priority))
		obj.Policy = knftables.PtrTo(knftables.BaseChainPolicy(b.Policy))
	}
	return obj
}

func setObject(s ruleset.Set) knftables.Object {
	var flags []knftables.SetFlag
	if s.Interval {
		flags = []knftables.SetFlag{knftables.IntervalFlag}
	}
	if s.Timeout {
		flags = append(flags, knftables.TimeoutFlag)
	}
	var comment *string
	if s.Comment != "" {
		comment = knftables.PtrTo(s.Comment)
	}
	if s.Map {
		return &knftables.Map{Name: s.Name, Type: s.Type, Flags: flags, Comment: comment}
	}
	return &knftables.Set{Name: s.Name, Type: s.Type, Flags: flags, Comment: comment}
}

func elementObject(s ruleset.Set, e ruleset.Element) *knftables.Element {
	obj := &knftables.Element{Key: e.Key}
	if s.Map {
		obj.Map = s.Name
		if e.Value != "" {
			obj.Value = []string{e.Value}
		}
	} else {
		obj.Set = s.Name
	}
	return obj
}

// learnedSets are the timeout sets of r: their elements come from the DNS proxy, so a full
// sync keeps them (adding an existing set with the same definition changes nothing) instead
// of recreating them empty.
func learnedSets(r *ruleset.Ruleset) map[string]bool {
	keep := map[string]bool{}
	for _, s := range r.Sets {
		if s.Timeout && !s.Map {
			keep[s.Name] = true
		}
	}
	return keep
}

// errf wraps an error with the name of the object it concerns.
func errf(kind, name string, err error) error { return fmt.Errorf("%s %s: %w", kind, name, err) }
