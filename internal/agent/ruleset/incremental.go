package ruleset

import (
	"slices"

	"github.com/palisade-fw/palisade/internal/agent/model"
)

// Incremental rendering of the CWNP maps. A map's elements are the resolved rectangles of
// all policies' (address span, port range) items. Items split into components that resolve
// independently of each other: groups of items connected by address overlap (resolveRects
// resolves each group alone), joined with the next group where the two touch and share an
// owner at the touching address (only there can the final merge of neighbours join
// rectangles of two groups). A component's rectangles depend only on its items and on the
// order of its owners, which is the order of the policies' keys and never changes; so the
// Renderer keeps every component's elements, keyed by its items with owners named by a
// stable ID instead of their position, and resolves and formats only components it did not
// see last time. A changed CIDR of one policy touches one or two components; the rest is
// a linear pass and a sort of the resulting elements. TestIncrementalEqualsFull proves the
// result equal to Render for random sequences of changes.

// policyCaches is what a Renderer keeps between renders of the policy part.
type policyCaches struct {
	ids    map[model.ObjectKey]uint64 // stable owner IDs of the current policies
	nextID uint64
	// rank is the owner ID of each policy position in this render, pos its inverse
	// (indexed by ID; -1 for IDs not in this render).
	rank []uint64
	pos  []int
	// objects are the policies' chains by key, reused while their description holds.
	objects map[model.ObjectKey]cachedObject
	// maps are the component caches per family, direction (egress, ingress) and protocol
	// (in model.Protocols order).
	maps [2][2][]*rectCache
}

type cachedObject struct {
	what        string
	logAccepted bool
	name        string
	chain       Chain
}

func newPolicyCaches() *policyCaches {
	c := &policyCaches{ids: map[model.ObjectKey]uint64{}, objects: map[model.ObjectKey]cachedObject{}}
	for fi := range c.maps {
		for d := range c.maps[fi] {
			for range model.Protocols {
				c.maps[fi][d] = append(c.maps[fi][d], &rectCache{})
			}
		}
	}
	return c
}

// prepare assigns the owner IDs of this render's policies (sorted) and forgets the IDs of
// policies that are gone (a policy that comes back gets a new ID: its components are
// resolved again, nothing more).
func (c *policyCaches) prepare(policies []model.Policy) {
	ids := make(map[model.ObjectKey]uint64, len(policies))
	c.rank = make([]uint64, len(policies))
	for i, p := range policies {
		id, ok := c.ids[p.Key]
		if !ok {
			c.nextID++
			id = c.nextID
		}
		ids[p.Key] = id
		c.rank[i] = id
	}
	c.ids = ids
	c.pos = slices.Grow(c.pos[:0], int(c.nextID)+1)[:c.nextID+1]
	for i := range c.pos {
		c.pos[i] = -1
	}
	for i, id := range c.rank {
		c.pos[id] = i
	}
}

// object returns the chain of a policy, built once per description.
func (c *policyCaches) object(key model.ObjectKey, what string, logAccepted bool) (string, Chain) {
	if o, ok := c.objects[key]; ok && o.what == what && o.logAccepted == logAccepted {
		return o.name, o.chain
	}
	name := objectName("cwnp", key)
	o := cachedObject{what: what, logAccepted: logAccepted, name: name, chain: objectChain(name, what, logAccepted)}
	c.objects[key] = o
	return o.name, o.chain
}

// prune drops the chains of policies that are gone.
func (c *policyCaches) prune() {
	for key := range c.objects {
		if _, ok := c.ids[key]; !ok {
			delete(c.objects, key)
		}
	}
}

// rectCache holds the items and components of one map and protocol from the last render.
// Items keep owners as IDs: byOwner in the order the policy produced them (to see which
// policies changed without sorting), sorted all of them by address start and owner
// position (positions shift when policies come and go, their order does not).
type rectCache struct {
	comps   map[uint64][]*component
	byOwner map[uint64][]rect
	sorted  []rect
	order   []placed // the last render's elements in order, owners as IDs
}

// component is a resolved component: its items and rectangles with owners as IDs, and the
// elements of the rectangles.
type component struct {
	items []rect
	out   []rect
	elems []Element
}

// elements resolves entries like resolveRects and formats the elements, reusing every
// component seen in the last render. rank maps owner positions to IDs and pos IDs to
// positions; chains names the policy chain of every position.
func (c *rectCache) elements(entries []portEntry, rank []uint64, pos []int, f family, proto model.Protocol, chains []string) []Element {
	items := c.sortedItems(entries, rank, pos)
	next := make(map[uint64][]*component, len(c.comps))
	reused := map[*component]bool{}
	var fresh []placed // owners: positions
	forEachComponent(items, func(comp []rect) {
		h := hashItems(comp, rank)
		for _, cand := range c.comps[h] {
			if sameItems(cand.items, comp, rank) {
				reused[cand] = true
				next[h] = append(next[h], cand)
				return
			}
		}
		resolved := resolveComponent(comp, rank, f, proto, chains)
		next[h] = append(next[h], resolved)
		for i, r := range resolved.out {
			r.owner = pos[r.owner]
			fresh = append(fresh, placed{r: r, e: &resolved.elems[i], comp: resolved})
		}
	})
	c.comps = next

	// The order of resolveRects (rectangles of different components never merge): the
	// elements of reused components keep their order from the last render, the fresh ones
	// are sorted and merged in.
	slices.SortFunc(fresh, func(a, b placed) int { return compareRects(a.r, b.r) })
	order := make([]placed, 0, len(c.order)+len(fresh))
	j := 0
	for _, p := range c.order {
		if !reused[p.comp] {
			continue
		}
		p.r.owner = pos[p.r.owner]
		for j < len(fresh) && compareRects(fresh[j].r, p.r) < 0 {
			order = append(order, fresh[j])
			j++
		}
		order = append(order, p)
	}
	order = append(order, fresh[j:]...)
	out := make([]Element, len(order))
	for i := range order {
		out[i] = *order[i].e
		order[i].r.owner = int(rank[order[i].r.owner]) // kept with owners as IDs
	}
	c.order = order
	return out
}

// placed is an element of a map in its place: its rectangle and component.
type placed struct {
	r    rect
	e    *Element
	comp *component
}

// sortedItems returns the items of entries as rectItems does (owners: positions), sorting
// only the items of policies whose items changed since the last render into the rest.
func (c *rectCache) sortedItems(entries []portEntry, rank []uint64, pos []int) []rect {
	byOwner := make(map[uint64][]rect, len(c.byOwner))
	changed := map[uint64]bool{}
	var added []rect // owners: positions
	var segment []rect
	flush := func() {
		if len(segment) == 0 {
			return
		}
		id := rank[segment[0].owner]
		old, ok := c.byOwner[id]
		if ok && sameItems(old, segment, rank) {
			byOwner[id] = old
		} else {
			changed[id] = true
			byID := slices.Clone(segment)
			for i := range byID {
				byID[i].owner = int(id)
			}
			byOwner[id] = byID
			added = append(added, segment...)
		}
		segment = segment[:0]
	}
	// Entries come policy by policy: one owner's items are consecutive.
	for _, e := range entries {
		for _, s := range e.spans {
			if len(segment) > 0 && segment[0].owner != s.owner {
				flush()
			}
			segment = append(segment, rect{owned: s, first: e.first, last: e.last})
		}
	}
	flush()
	for id := range c.byOwner {
		if _, ok := byOwner[id]; !ok {
			changed[id] = true
		}
	}
	c.byOwner = byOwner
	slices.SortFunc(added, func(a, b rect) int { return compareOwned(a.owned, b.owned) })

	// Merge the kept items (still sorted: positions keep their order) with the added ones.
	out := make([]rect, 0, len(c.sorted)+len(added))
	sorted := make([]rect, 0, cap(out))
	j := 0
	for _, it := range c.sorted {
		if changed[uint64(it.owner)] {
			continue
		}
		byPos := it
		byPos.owner = pos[it.owner]
		for j < len(added) && compareOwned(added[j].owned, byPos.owned) < 0 {
			out = append(out, added[j])
			sorted = append(sorted, withOwner(added[j], int(rank[added[j].owner])))
			j++
		}
		out = append(out, byPos)
		sorted = append(sorted, it)
	}
	for ; j < len(added); j++ {
		out = append(out, added[j])
		sorted = append(sorted, withOwner(added[j], int(rank[added[j].owner])))
	}
	c.sorted = sorted
	return out
}

func withOwner(r rect, owner int) rect {
	r.owner = owner
	return r
}

// resolveComponent resolves one component (owners: positions) and keeps it with owners as IDs.
func resolveComponent(comp []rect, rank []uint64, f family, proto model.Protocol, chains []string) *component {
	var out []rect
	forEachGroup(comp, func(group []rect) { out = flushGroup(out, group) })
	out = sortMergeRects(out)
	c := &component{items: make([]rect, len(comp)), out: out, elems: make([]Element, len(out))}
	for i, r := range out {
		c.elems[i] = Element{Key: []string{r.format(f.v4), proto.String(), formatPorts(r.first, r.last)}, Value: "goto " + chains[r.owner]}
		c.out[i].owner = int(rank[r.owner])
	}
	for i, it := range comp {
		it.owner = int(rank[it.owner])
		c.items[i] = it
	}
	return c
}

func hashItems(items []rect, rank []uint64) uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		h ^= v
		h *= 1099511628211
		h ^= h >> 29
	}
	for _, it := range items {
		mix(it.lo.hi)
		mix(it.lo.lo)
		mix(it.hi.hi)
		mix(it.hi.lo)
		mix(uint64(it.first)<<16 | uint64(it.last))
		mix(rank[it.owner])
	}
	return h
}

// sameItems compares cached items (owners: IDs) with items of this render (owners: positions).
func sameItems(cached, items []rect, rank []uint64) bool {
	if len(cached) != len(items) {
		return false
	}
	for i := range cached {
		a, b := cached[i], items[i]
		if a.span != b.span || a.first != b.first || a.last != b.last || uint64(a.owner) != rank[b.owner] {
			return false
		}
	}
	return true
}

// forEachComponent calls fn for every component of items (sorted by rectItems): overlap
// groups, joined with the next group where they touch and share an owner at that address.
func forEachComponent(items []rect, fn func(comp []rect)) {
	if len(items) == 0 {
		return
	}
	compStart := 0
	var prev []rect // the previous group
	var prevHi num
	offset := 0
	forEachGroup(items, func(group []rect) {
		start := offset
		offset += len(group)
		hi := group[0].hi
		for _, it := range group[1:] {
			if hi.less(it.hi) {
				hi = it.hi
			}
		}
		if prev != nil && !(prevHi.next() == group[0].lo && shareOwnerAt(prev, prevHi, group)) {
			fn(items[compStart:start])
			compStart = start
		}
		prev, prevHi = group, hi
	})
	fn(items[compStart:])
}

// shareOwnerAt tells whether an item of prev ending at hi and an item of next starting at
// next's first address have the same owner.
func shareOwnerAt(prev []rect, hi num, next []rect) bool {
	lo := next[0].lo
	for _, a := range prev {
		if a.hi != hi {
			continue
		}
		for _, b := range next {
			if b.lo != lo {
				break // sorted by start
			}
			if a.owner == b.owner {
				return true
			}
		}
	}
	return false
}
