package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	gnftables "github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// mapChange is the element difference of one map.
type mapChange struct {
	set            ruleset.Set
	removed, added []ruleset.Element
}

// elementOnlyDelta returns the map changes when old and r differ only in elements of
// concatenated maps (the usual shape of a CIDR or source-range change). ok is false when
// anything else differs; then the delta goes through nft.
func elementOnlyDelta(old, r *ruleset.Ruleset) (changes []mapChange, ok bool) {
	if old.Table != r.Table || len(old.Chains) != len(r.Chains) || len(old.Sets) != len(r.Sets) ||
		!slices.Equal(old.Counters, r.Counters) {
		return nil, false
	}
	for i, c := range r.Chains {
		o := old.Chains[i]
		if o.Name != c.Name || o.Comment != c.Comment || !sameBase(o.Base, c.Base) || !slices.Equal(o.Rules, c.Rules) {
			return nil, false
		}
	}
	for i, s := range r.Sets {
		o := old.Sets[i]
		if o.Name != s.Name || o.Comment != s.Comment || o.Type != s.Type || o.Map != s.Map || o.Interval != s.Interval || o.Timeout != s.Timeout {
			return nil, false
		}
		removed, added := diffElements(o.Elements, s.Elements)
		if len(removed)+len(added) == 0 {
			continue
		}
		if !s.Map || !strings.Contains(s.Type, " . ") {
			return nil, false // plain interval sets need start/end pairs; nft handles them
		}
		changes = append(changes, mapChange{set: s, removed: removed, added: added})
	}
	return changes, true
}

// applyElements sends every change as one netlink batch: one transaction, all or nothing.
func (l *Netlink) applyElements(changes []mapChange) (int, error) {
	c, err := l.conn()
	if err != nil {
		return 0, err
	}
	table := &gnftables.Table{Name: l.table, Family: gnftables.TableFamilyINet}
	ops := 0
	// Deletes first: the kernel rejects an add that overlaps an element still present.
	for _, ch := range changes {
		set := &gnftables.Set{Table: table, Name: ch.set.Name, IsMap: true, Interval: true, Concatenation: true}
		elems, err := encodeElements(ch.set, ch.removed, false)
		if err != nil {
			return 0, err
		}
		if len(elems) > 0 {
			if err := c.SetDeleteElements(set, elems); err != nil {
				return 0, err
			}
			ops += len(elems)
		}
	}
	for _, ch := range changes {
		set := &gnftables.Set{Table: table, Name: ch.set.Name, IsMap: true, Interval: true, Concatenation: true}
		elems, err := encodeElements(ch.set, ch.added, true)
		if err != nil {
			return 0, err
		}
		if len(elems) > 0 {
			if err := c.SetAddElements(set, elems); err != nil {
				return 0, err
			}
			ops += len(elems)
		}
	}
	return ops, c.Flush()
}

func encodeElements(s ruleset.Set, elems []ruleset.Element, withValue bool) ([]gnftables.SetElement, error) {
	keyType, _, _ := strings.Cut(s.Type, " : ")
	fields := strings.Split(keyType, " . ")
	out := make([]gnftables.SetElement, 0, len(elems))
	for _, e := range elems {
		if len(e.Key) != len(fields) {
			return nil, fmt.Errorf("map %s: element %q has %d fields, type has %d", s.Name, e.String(), len(e.Key), len(fields))
		}
		var key, keyEnd []byte
		for i, f := range fields {
			lo, hi, err := encodeField(f, e.Key[i])
			if err != nil {
				return nil, fmt.Errorf("map %s: element %q: %w", s.Name, e.String(), err)
			}
			key, keyEnd = append(key, lo...), append(keyEnd, hi...)
		}
		el := gnftables.SetElement{Key: key, KeyEnd: keyEnd}
		if withValue {
			chain, ok := strings.CutPrefix(e.Value, "goto ")
			if !ok {
				return nil, fmt.Errorf("map %s: value %q is not a goto", s.Name, e.Value)
			}
			el.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}
		}
		out = append(out, el)
	}
	return out, nil
}

// encodeField returns the first and last value of one key field, each padded to the 4-byte
// register size the kernel expects in concatenations.
func encodeField(typ, v string) (lo, hi []byte, err error) {
	switch typ {
	case "ipv4_addr", "ipv6_addr":
		first, last, err := parseAddrRange(v)
		if err != nil {
			return nil, nil, err
		}
		if first.Is4() != (typ == "ipv4_addr") {
			return nil, nil, fmt.Errorf("%s is not of type %s", v, typ)
		}
		return first.AsSlice(), last.AsSlice(), nil
	case "inet_proto":
		var p byte
		switch v {
		case "tcp":
			p = 6
		case "udp":
			p = 17
		case "sctp":
			p = 132
		default:
			return nil, nil, fmt.Errorf("unknown protocol %q", v)
		}
		b := []byte{p, 0, 0, 0}
		return b, b, nil
	case "inet_service":
		first, last, err := parsePortRange(v)
		if err != nil {
			return nil, nil, err
		}
		lo, hi = make([]byte, 4), make([]byte, 4)
		binary.BigEndian.PutUint16(lo, first)
		binary.BigEndian.PutUint16(hi, last)
		return lo, hi, nil
	}
	return nil, nil, fmt.Errorf("unsupported key type %q", typ)
}

// parseAddrRange reads an address, a prefix or "first-last" as the renderer writes them.
func parseAddrRange(v string) (netip.Addr, netip.Addr, error) {
	if first, last, ok := strings.Cut(v, "-"); ok {
		a, err1 := netip.ParseAddr(first)
		b, err2 := netip.ParseAddr(last)
		if err1 != nil || err2 != nil || b.Less(a) {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("bad address range %q", v)
		}
		return a, b, nil
	}
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Addr{}, netip.Addr{}, err
		}
		return p.Masked().Addr(), lastAddr(p), nil
	}
	a, err := netip.ParseAddr(v)
	return a, a, err
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for bit := p.Bits(); bit < len(b)*8; bit++ {
		b[bit/8] |= 0x80 >> (bit % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func parsePortRange(v string) (uint16, uint16, error) {
	first, last, isRange := strings.Cut(v, "-")
	a, err := strconv.ParseUint(first, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("bad port %q", v)
	}
	if !isRange {
		return uint16(a), uint16(a), nil
	}
	b, err := strconv.ParseUint(last, 10, 16)
	if err != nil || b < a {
		return 0, 0, fmt.Errorf("bad port range %q", v)
	}
	return uint16(a), uint16(b), nil
}
