package ruleset

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// num is an address as a 128-bit number; IPv4 addresses live in the low 32 bits. Interval
// arithmetic on numbers is simpler and faster than on netip.Addr.
type num struct{ hi, lo uint64 }

func numOf(a netip.Addr) num {
	if a.Is4() {
		b := a.As4()
		return num{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return num{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

func (n num) addr(v4 bool) netip.Addr {
	if v4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(n.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], n.hi)
	binary.BigEndian.PutUint64(b[8:], n.lo)
	return netip.AddrFrom16(b)
}

func (n num) less(m num) bool { return n.hi < m.hi || (n.hi == m.hi && n.lo < m.lo) }

func (n num) next() num {
	lo, carry := bits.Add64(n.lo, 1, 0)
	return num{hi: n.hi + carry, lo: lo}
}

func (n num) prev() num {
	lo, borrow := bits.Sub64(n.lo, 1, 0)
	return num{hi: n.hi - borrow, lo: lo}
}

func maxNum(v4 bool) num {
	if v4 {
		return num{lo: 1<<32 - 1}
	}
	return num{hi: ^uint64(0), lo: ^uint64(0)}
}

// span is an inclusive address range.
type span struct{ lo, hi num }

func spanOf(p netip.Prefix) span {
	lo := numOf(p.Masked().Addr())
	hostBits := p.Addr().BitLen() - p.Bits()
	var mask num
	switch {
	case hostBits >= 128:
		mask = num{hi: ^uint64(0), lo: ^uint64(0)}
	case hostBits >= 64:
		mask = num{hi: 1<<(hostBits-64) - 1, lo: ^uint64(0)}
	default:
		mask = num{lo: 1<<hostBits - 1}
	}
	return span{lo: lo, hi: num{hi: lo.hi | mask.hi, lo: lo.lo | mask.lo}}
}

// subtract returns p minus the excepted prefixes (which lie inside p) as sorted spans.
func subtract(p netip.Prefix, except []netip.Prefix) []span {
	whole := spanOf(p)
	if len(except) == 0 {
		return []span{whole}
	}
	holes := make([]owned, 0, len(except))
	for _, e := range except {
		holes = append(holes, owned{span: spanOf(e)})
	}
	holes = resolve(holes) // merged, sorted, disjoint
	var out []span
	cur := whole.lo
	done := false
	for _, h := range holes {
		if cur.less(h.lo) {
			out = append(out, span{lo: cur, hi: h.lo.prev()})
		}
		if h.hi == whole.hi {
			done = true
			break
		}
		cur = h.hi.next()
	}
	if !done && !whole.hi.less(cur) {
		out = append(out, span{lo: cur, hi: whole.hi})
	}
	return out
}

// format prints a span as a prefix when it is one, else as an nftables range.
func (s span) format(v4 bool) string {
	lo, hi := s.lo.addr(v4), s.hi.addr(v4)
	if lo == hi {
		return lo.String()
	}
	x := num{hi: s.lo.hi ^ s.hi.hi, lo: s.lo.lo ^ s.hi.lo}
	// x must be 2^n-1 and lo must have those n bits clear for the span to be a prefix.
	y := x.next()
	isPow2 := (y.hi == 0 && y.lo&(y.lo-1) == 0) || (y.lo == 0 && y.hi&(y.hi-1) == 0)
	if isPow2 && s.lo.hi&x.hi == 0 && s.lo.lo&x.lo == 0 {
		hostBits := bits.OnesCount64(x.hi) + bits.OnesCount64(x.lo)
		return netip.PrefixFrom(lo, lo.BitLen()-hostBits).String()
	}
	return lo.String() + "-" + hi.String()
}
