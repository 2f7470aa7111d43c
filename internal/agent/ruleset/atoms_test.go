package ruleset

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func spans(t *testing.T, in ...string) []owned {
	t.Helper()
	var out []owned
	for i := 0; i < len(in); i += 2 {
		p := netip.MustParsePrefix(in[i])
		owner := int(in[i+1][0] - '0')
		out = append(out, owned{span: spanOf(p), owner: owner})
	}
	return out
}

func formatAll(os []owned, v4 bool) []string {
	var out []string
	for _, o := range os {
		out = append(out, o.format(v4)+"@"+string(rune('0'+o.owner)))
	}
	return out
}

func TestResolve(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		want []string
	}{
		{"disjoint", []string{"10.0.0.0/24", "0", "10.0.2.0/24", "1"}, []string{"10.0.0.0/24@0", "10.0.2.0/24@1"}},
		{"adjacent same owner merge", []string{"10.0.0.0/25", "0", "10.0.0.128/25", "0"}, []string{"10.0.0.0/24@0"}},
		{"inner lower owner splits outer", []string{"10.0.0.0/8", "1", "10.1.0.0/16", "0"},
			[]string{"10.0.0.0/16@1", "10.1.0.0/16@0", "10.2.0.0-10.255.255.255@1"}},
		{"outer lower owner swallows inner", []string{"10.0.0.0/8", "0", "10.1.0.0/16", "1"}, []string{"10.0.0.0/8@0"}},
		{"everything", []string{"0.0.0.0/0", "0", "255.255.255.255/32", "1"}, []string{"0.0.0.0/0@0"}},
		{"top address", []string{"255.255.255.255/32", "0"}, []string{"255.255.255.255@0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := formatAll(resolve(spans(t, c.in...)), true); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	if got := formatAll(resolve(spans(t, "::/0", "0", "ffff::/16", "1")), false); !slices.Equal(got, []string{"::/0@0"}) {
		t.Errorf("ipv6 everything: %v", got)
	}
}

func TestSubtract(t *testing.T) {
	p := netip.MustParsePrefix
	var got []string
	for _, s := range subtract(p("10.0.0.0/8"), []netip.Prefix{p("10.0.0.0/16"), p("10.255.0.0/16"), p("10.1.0.0/16")}) {
		got = append(got, s.format(true))
	}
	want := []string{"10.2.0.0-10.254.255.255"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if s := subtract(p("10.0.0.0/8"), []netip.Prefix{p("10.0.0.0/8")}); len(s) != 0 {
		t.Errorf("everything excepted: %v", s)
	}
	got = nil
	for _, s := range subtract(p("::/0"), []netip.Prefix{p("ffff::/16")}) {
		got = append(got, s.format(false))
	}
	if !slices.Equal(got, []string{"::-fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}) {
		t.Errorf("ipv6: %v", got)
	}
}

func TestResolvePorts(t *testing.T) {
	a := spans(t, "10.0.0.0/8", "0")
	b := spans(t, "10.1.0.0/16", "1")
	atoms := resolvePorts([]portEntry{{first: 80, last: 90, spans: b}, {first: 0, last: 65535, spans: a}})
	var got []string
	for _, at := range atoms {
		got = append(got, formatPorts(at.first, at.last)+":"+slices.Concat(formatAll(at.spans, true))[0])
	}
	// owner 0 covers everything, so the atoms merge back into one
	if !slices.Equal(got, []string{"0-65535:10.0.0.0/8@0"}) {
		t.Errorf("got %v", got)
	}
	atoms = resolvePorts([]portEntry{{first: 80, last: 90, spans: a}, {first: 85, last: 100, spans: b}})
	got = nil
	for _, at := range atoms {
		got = append(got, formatPorts(at.first, at.last)+":"+string(rune('0'+len(at.spans))))
	}
	if !slices.Equal(got, []string{"80-90:1", "91-100:1"}) {
		t.Errorf("got %v", got)
	}
}

// resolveRects must give every (address, port) the owner the lowest-indexed covering entry
// has, with rectangles that never overlap (the kernel rejects overlapping elements).
func TestResolveRectsMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		var entries []portEntry
		for owner := range 1 + rng.IntN(6) {
			for range 1 + rng.IntN(3) {
				first := uint16(rng.IntN(20))
				last := first + uint16(rng.IntN(6))
				var spans []owned
				for range 1 + rng.IntN(3) {
					lo := uint64(rng.IntN(60))
					spans = append(spans, owned{span: span{lo: num{lo: lo}, hi: num{lo: lo + uint64(rng.IntN(12))}}, owner: owner})
				}
				entries = append(entries, portEntry{first: first, last: last, spans: spans})
			}
		}
		rects := resolveRects(entries)
		for i, a := range rects {
			for _, b := range rects[i+1:] {
				if a.first <= b.last && b.first <= a.last && !a.hi.less(b.lo) && !b.hi.less(a.lo) {
					t.Fatalf("round %d: overlapping elements %+v and %+v", round, a, b)
				}
			}
		}
		for addr := uint64(0); addr < 80; addr++ {
			for port := uint16(0); port < 30; port++ {
				want := -1
				for _, e := range entries {
					if port < e.first || port > e.last {
						continue
					}
					for _, s := range e.spans {
						if s.lo.lo <= addr && addr <= s.hi.lo && (want == -1 || s.owner < want) {
							want = s.owner
						}
					}
				}
				got := -1
				for _, r := range rects {
					if port >= r.first && port <= r.last && r.lo.lo <= addr && addr <= r.hi.lo {
						got = r.owner
					}
				}
				if got != want {
					t.Fatalf("round %d: address %d port %d owned by %d, want %d", round, addr, port, got, want)
				}
			}
		}
	}
}
