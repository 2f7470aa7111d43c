package ruleset

import (
	"container/heap"
	"slices"
)

// The kernel rejects overlapping elements in interval sets and maps (and which element a
// lookup hits among overlapping ones would be undefined), so every set and map is filled with
// disjoint elements. When two objects allow the same traffic, the one with the lower owner
// index (objects are sorted by name) owns the overlap and its counter counts it; the traffic
// is accepted either way.

// owned is a span that belongs to one object.
type owned struct {
	span
	owner int
}

// resolve turns possibly overlapping spans into sorted, disjoint spans, giving every address
// to the lowest owner that covers it and merging neighbours of the same owner.
func resolve(in []owned) []owned {
	if len(in) == 0 {
		return nil
	}
	sorted := slices.Clone(in)
	slices.SortFunc(sorted, compareOwned)
	return resolveSorted(sorted)
}

// compareOwned orders spans by start, then owner.
func compareOwned(a, b owned) int {
	switch {
	case a.lo.less(b.lo):
		return -1
	case b.lo.less(a.lo):
		return 1
	}
	return a.owner - b.owner
}

// resolveSorted is resolve for input sorted by compareOwned.
func resolveSorted(sorted []owned) []owned {
	if len(sorted) == 0 {
		return nil
	}
	if out, ok := resolveDisjoint(sorted); ok {
		return out
	}
	// Every segment starts at a span start or right after a span end.
	starts := make([]num, 0, 2*len(sorted))
	for _, s := range sorted {
		starts = append(starts, s.lo)
		if s.hi != (num{hi: ^uint64(0), lo: ^uint64(0)}) {
			starts = append(starts, s.hi.next())
		}
	}
	slices.SortFunc(starts, func(a, b num) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	starts = slices.Compact(starts)

	var out []owned
	active := &ownerHeap{}
	next := 0
	for i, start := range starts {
		for next < len(sorted) && !start.less(sorted[next].lo) {
			heap.Push(active, sorted[next])
			next++
		}
		for active.Len() > 0 && (*active)[0].hi.less(start) {
			heap.Pop(active)
		}
		if active.Len() == 0 {
			continue
		}
		top := (*active)[0]
		end := top.hi // the last segment ends where its spans end
		if i+1 < len(starts) {
			end = starts[i+1].prev()
		}
		if n := len(out); n > 0 && out[n-1].owner == top.owner && out[n-1].hi.next() == start {
			out[n-1].hi = end
			continue
		}
		out = append(out, owned{span: span{lo: start, hi: end}, owner: top.owner})
	}
	return out
}

// resolveDisjoint is the common case (CIDRs of different objects rarely overlap): sorted
// spans that do not overlap only need neighbours of the same owner merged. ok is false at
// the first overlap.
func resolveDisjoint(sorted []owned) ([]owned, bool) {
	out := make([]owned, 0, len(sorted))
	for i, s := range sorted {
		if i > 0 && !sorted[i-1].hi.less(s.lo) {
			return nil, false
		}
		if n := len(out); n > 0 && out[n-1].owner == s.owner && out[n-1].hi.next() == s.lo {
			out[n-1].hi = s.hi
			continue
		}
		out = append(out, s)
	}
	return out, true
}

// ownerHeap pops the lowest owner first.
type ownerHeap []owned

func (h ownerHeap) Len() int           { return len(h) }
func (h ownerHeap) Less(i, j int) bool { return h[i].owner < h[j].owner }
func (h ownerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *ownerHeap) Push(x any)        { *h = append(*h, x.(owned)) }
func (h *ownerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// portEntry is a port range of one protocol with the address spans allowed on it.
type portEntry struct {
	first, last uint16
	spans       []owned
}

// portAtom is a disjoint port range with disjoint, resolved address spans.
type portAtom struct {
	first, last uint16
	spans       []owned
}

// resolvePorts splits port ranges into disjoint atoms, resolves the addresses allowed on each
// and merges neighbouring atoms that ended up identical.
func resolvePorts(entries []portEntry) []portAtom {
	if len(entries) == 0 {
		return nil
	}
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b portEntry) int { return int(a.first) - int(b.first) })
	starts := make([]int, 0, 2*len(sorted))
	for _, e := range sorted {
		starts = append(starts, int(e.first), int(e.last)+1)
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)

	// Sort every span once; an atom then filters the spans of its active entries in order
	// instead of sorting them again (many atoms share most of their entries).
	type entrySpan struct {
		owned
		entry int
	}
	var all []entrySpan
	for i, e := range sorted {
		for _, sp := range e.spans {
			all = append(all, entrySpan{owned: sp, entry: i})
		}
	}
	slices.SortFunc(all, func(a, b entrySpan) int { return compareOwned(a.owned, b.owned) })
	active := make([]bool, len(sorted))
	activeSpans := 0

	var out []portAtom
	var open []int // indexes into sorted of the active entries
	next := 0
	for i, start := range starts {
		if start > 65535 {
			break
		}
		for next < len(sorted) && int(sorted[next].first) <= start {
			open = append(open, next)
			active[next] = true
			activeSpans += len(sorted[next].spans)
			next++
		}
		open = slices.DeleteFunc(open, func(e int) bool {
			if int(sorted[e].last) < start {
				active[e] = false
				activeSpans -= len(sorted[e].spans)
				return true
			}
			return false
		})
		if len(open) == 0 {
			continue
		}
		end := starts[i+1] - 1 // a start > every last always follows, so i+1 exists
		spans := make([]owned, 0, activeSpans)
		for _, sp := range all {
			if active[sp.entry] {
				spans = append(spans, sp.owned)
			}
		}
		resolved := resolveSorted(spans)
		if n := len(out); n > 0 && int(out[n-1].last)+1 == start && slices.Equal(out[n-1].spans, resolved) {
			out[n-1].last = uint16(end)
			continue
		}
		out = append(out, portAtom{first: uint16(start), last: uint16(end), spans: resolved})
	}
	return out
}

// rect is one map element: an address span on a port range, owned by one object.
type rect struct {
	owned
	first, last uint16
}

// resolveRects turns port entries into disjoint rectangles (address span x port range) with
// the same owners resolvePorts would give every (address, port). Only addresses covered by
// more than one span need splitting: spans that overlap no other span keep their port range
// whole, so objects with distinct CIDRs get one element per port range instead of one per
// port atom of all objects together.
func resolveRects(entries []portEntry) []rect {
	items := rectItems(entries)
	var out []rect
	forEachGroup(items, func(group []rect) { out = flushGroup(out, group) })
	return sortMergeRects(out)
}

// rectItems lists the rectangles of entries sorted by address start, then owner.
func rectItems(entries []portEntry) []rect {
	var items []rect
	for _, e := range entries {
		for _, s := range e.spans {
			items = append(items, rect{owned: s, first: e.first, last: e.last})
		}
	}
	slices.SortFunc(items, func(a, b rect) int { return compareOwned(a.owned, b.owned) })
	return items
}

// forEachGroup calls fn for every group of items (sorted by rectItems) connected by address
// overlap; a span that starts after the highest end so far starts a new group. Groups are
// resolved independently of each other.
func forEachGroup(items []rect, fn func(group []rect)) {
	if len(items) == 0 {
		return
	}
	start, maxHi := 0, items[0].hi
	for i := 1; i < len(items); i++ {
		if maxHi.less(items[i].lo) {
			fn(items[start:i])
			start, maxHi = i, items[i].hi
			continue
		}
		if maxHi.less(items[i].hi) {
			maxHi = items[i].hi
		}
	}
	fn(items[start:])
}

// flushGroup appends the disjoint rectangles of one overlap group to out.
func flushGroup(out, group []rect) []rect {
	if len(group) == 1 || (len(group) <= 8 && !conflicting(group)) {
		// Overlapping addresses on disjoint ports (one object's CIDR on several
		// ports) need no splitting either.
		return append(out, group...)
	}
	sub := make([]portEntry, len(group))
	for i, it := range group {
		sub[i] = portEntry{first: it.first, last: it.last, spans: []owned{it.owned}}
	}
	for _, atom := range resolvePorts(sub) {
		for _, s := range atom.spans {
			out = append(out, rect{owned: s, first: atom.first, last: atom.last})
		}
	}
	return out
}

// compareRects is the order of map elements: by ports, then address, then owner.
func compareRects(a, b rect) int {
	switch {
	case a.first != b.first:
		return int(a.first) - int(b.first)
	case a.last != b.last:
		return int(a.last) - int(b.last)
	}
	return compareOwned(a.owned, b.owned)
}

// sortMergeRects merges address neighbours with the same owner and ports, ordered by ports.
func sortMergeRects(out []rect) []rect {
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, compareRects)
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 {
			p := &merged[n-1]
			if p.first == r.first && p.last == r.last && p.owner == r.owner && p.hi.next() == r.lo {
				p.hi = r.hi
				continue
			}
		}
		merged = append(merged, r)
	}
	return merged
}

// conflicting tells whether two rectangles of a small group overlap in addresses and ports.
func conflicting(group []rect) bool {
	for i, a := range group {
		for _, b := range group[i+1:] {
			if a.first <= b.last && b.first <= a.last && !a.hi.less(b.lo) && !b.hi.less(a.lo) {
				return true
			}
		}
	}
	return false
}
