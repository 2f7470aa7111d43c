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

// encodeElements turns rendered elements into netlink set elements. Concatenations carry
// their range as key and key end (the kernel's pipapo sets); a single-field interval set or
// map (the kernel's rbtree) gets a start element and, unless the range reaches the last
// address, an end element one past it, as nft sends them. withValue adds the verdicts (not
// needed to delete).
func encodeElements(s ruleset.Set, elems []ruleset.Element, withValue bool) ([]gnftables.SetElement, error) {
	keyType, _, _ := strings.Cut(s.Type, " : ")
	fields := strings.Split(keyType, " . ")
	out := make([]gnftables.SetElement, 0, len(elems))
	for _, e := range elems {
		if len(e.Key) != len(fields) {
			return nil, fmt.Errorf("set %s: element %q has %d fields, type has %d", s.Name, e.String(), len(e.Key), len(fields))
		}
		var key, keyEnd []byte
		for i, f := range fields {
			lo, hi, err := encodeField(f, e.Key[i])
			if err != nil {
				return nil, fmt.Errorf("set %s: element %q: %w", s.Name, e.String(), err)
			}
			key, keyEnd = append(key, lo...), append(keyEnd, hi...)
		}
		el := gnftables.SetElement{Key: key}
		if withValue && s.Map {
			chain, ok := strings.CutPrefix(e.Value, "goto ")
			if !ok {
				return nil, fmt.Errorf("map %s: value %q is not a goto", s.Name, e.Value)
			}
			el.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}
		}
		switch {
		case len(fields) > 1:
			el.KeyEnd = keyEnd
			out = append(out, el)
		case s.Interval:
			out = append(out, el)
			if end, ok := increment(keyEnd); ok {
				out = append(out, gnftables.SetElement{Key: end, IntervalEnd: true})
			}
		default:
			out = append(out, el)
		}
	}
	return out, nil
}

// increment returns b+1 as a big-endian number; ok is false when b is all ones.
func increment(b []byte) ([]byte, bool) {
	out := slices.Clone(b)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out, true
		}
	}
	return nil, false
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

func cutValue(t string) (key, value string, isMap bool) { return strings.Cut(t, " : ") }

func splitFields(key string) []string { return strings.Split(key, " . ") }
