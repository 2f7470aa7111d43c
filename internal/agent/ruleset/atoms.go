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
	slices.SortFunc(sorted, func(a, b owned) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return a.owner - b.owner
	})
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

	var out []portAtom
	var active []portEntry
	next := 0
	for i, start := range starts {
		if start > 65535 {
			break
		}
		for next < len(sorted) && int(sorted[next].first) <= start {
			active = append(active, sorted[next])
			next++
		}
		active = slices.DeleteFunc(active, func(e portEntry) bool { return int(e.last) < start })
		if len(active) == 0 {
			continue
		}
		end := starts[i+1] - 1 // a start > every last always follows, so i+1 exists
		var spans []owned
		for _, e := range active {
			spans = append(spans, e.spans...)
		}
		resolved := resolve(spans)
		if n := len(out); n > 0 && int(out[n-1].last)+1 == start && slices.Equal(out[n-1].spans, resolved) {
			out[n-1].last = uint16(end)
			continue
		}
		out = append(out, portAtom{first: uint16(start), last: uint16(end), spans: resolved})
	}
	return out
}
