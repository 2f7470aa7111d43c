package drift

import (
	"context"
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// The agent benchmarks' input (internal/agent/nft): 1,000 CWNPs with 10,000 CIDRs and 2,000
// LoadBalancer services.
func largeRuleset() *ruleset.Ruleset {
	ps, ss := fixture.Large(1000, 10000, 2000)
	snap, _ := model.Compose(fixture.Firewall(), ps, ss)
	return ruleset.Render(snap, ruleset.Options{Table: "firewall"})
}

// BenchmarkDriftCheck is one scheduled check of the large ruleset in the kernel: the table
// read back over netlink (rules and elements) and compared; the applier is locked meanwhile.
func BenchmarkDriftCheck(b *testing.B) {
	ctx := context.Background()
	n := newNetns(b)
	ap := nft.New(n.nl, nft.Options{})
	if _, err := ap.Apply(ctx, largeRuleset()); err != nil {
		b.Fatal(err)
	}
	d := New(Options{Source: ap})
	if st := d.Check(ctx); !st.InSync() {
		b.Fatalf("not in sync: %s", Summary(st.Differences))
	}
	b.ResetTimer()
	for b.Loop() {
		if st := d.Check(ctx); !st.InSync() {
			b.Fatal(Summary(st.Differences))
		}
	}
}

// BenchmarkExpected compiles the large ruleset for the comparison (once per applied ruleset).
func BenchmarkExpected(b *testing.B) {
	r := largeRuleset()
	for b.Loop() {
		if _, err := nft.Expected(r); err != nil {
			b.Fatal(err)
		}
	}
}
