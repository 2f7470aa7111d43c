package ruleset_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
	"github.com/palisade-fw/palisade/internal/testenv/ci"
)

var update = flag.Bool("update", false, "rewrite golden files")

// text renders the full `nft -f` form without touching any kernel.
func text(r *ruleset.Ruleset) string {
	return nft.Text(r)
}

var lookPath = exec.LookPath

// requireNFT skips unless nft can run in a scratch namespace (root, nft, unshare).
func requireNFT(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		ci.SkipOutsideCI(t, "skipping: nft --check in a scratch network namespace needs root")
	}
	for _, bin := range []string{"nft", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			ci.SkipOutsideCI(t, "skipping: "+bin+" is not installed")
		}
	}
}

func TestGolden(t *testing.T) {
	cases := map[string]model.Snapshot{
		"full":  fixture.Snapshot(),
		"empty": {Firewall: model.ParseFirewall(model.FirewallSpec{})},
	}
	logged := fixture.Snapshot()
	logged.Firewall.LogAccepted = true
	cases["log-accepted"] = logged

	for name, snap := range cases {
		t.Run(name, func(t *testing.T) {
			got := text(ruleset.Render(snap, ruleset.Options{}))
			path := filepath.Join("testdata", name+".nft")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("rendered ruleset differs from %s (run with -update after checking):\n%s", path, got)
			}
		})
	}
}

// Every golden file is a ruleset the kernel accepts.
func TestGoldenAcceptedByNFT(t *testing.T) {
	requireNFT(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "*.nft"))
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := nft.CheckInScratchNetns(context.Background(), string(data)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestForwardChainAndSetsDoNotGrow(t *testing.T) {
	small := ruleset.Render(fixture.Snapshot(), ruleset.Options{}).Stats()
	p, s := fixture.Large(200, 2000, 300)
	snap, _ := model.Compose(fixture.Firewall(), p, s)
	large := ruleset.Render(snap, ruleset.Options{}).Stats()
	if small.ForwardRules != large.ForwardRules || small.Sets != large.Sets {
		t.Errorf("forward rules %d -> %d, sets %d -> %d: must not depend on the input size",
			small.ForwardRules, large.ForwardRules, small.Sets, large.Sets)
	}
	// The numbers themselves: 4 fixed rules, per family 6 (a jump into the shard chain of
	// each of the two CWNP maps with ports, the 2 CWNP maps without ports, the 2 service
	// maps), the drop rule; per family 3 address sets, the shards (ruleset.MapShards per
	// CWNP map with ports), 2 CWNP maps without ports and 2 service maps. Each shard chain
	// has one rule per shard.
	wantRules, wantSets := 4+2*6+1, 2*(3+2*ruleset.MapShards+4)
	if large.ForwardRules != wantRules || large.Sets != wantSets {
		t.Errorf("forward rules %d, sets %d; want %d and %d", large.ForwardRules, large.Sets, wantRules, wantSets)
	}
	shardChains := 0
	for _, c := range ruleset.Render(snap, ruleset.Options{}).Chains {
		if strings.HasPrefix(c.Name, "egress_") || strings.HasPrefix(c.Name, "ingress_") {
			shardChains++
			if len(c.Rules) != ruleset.MapShards {
				t.Errorf("shard chain %s has %d rules, want %d", c.Name, len(c.Rules), ruleset.MapShards)
			}
		}
	}
	if shardChains != 4 {
		t.Errorf("%d shard chains, want 4 (egress and ingress per family)", shardChains)
	}
	// CIDRs and objects end up as elements (adjacent CIDRs of one policy share one).
	if large.Elements <= small.Elements || large.Elements < 200*3 {
		t.Errorf("only %d elements for 200 policies with 2000 CIDRs", large.Elements)
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	pols, svcs := fixture.Policies(), fixture.Services()
	a, _ := model.Compose(fixture.Firewall(), pols, svcs)
	// reversed input order
	for i, j := 0, len(pols)-1; i < j; i, j = i+1, j-1 {
		pols[i], pols[j] = pols[j], pols[i]
	}
	for i, j := 0, len(svcs)-1; i < j; i, j = i+1, j-1 {
		svcs[i], svcs[j] = svcs[j], svcs[i]
	}
	b, _ := model.Compose(fixture.Firewall(), pols, svcs)
	if ruleset.Render(a, ruleset.Options{}).Digest() != ruleset.Render(b, ruleset.Options{}).Digest() {
		t.Error("input order changed the ruleset")
	}
}

func TestTableName(t *testing.T) {
	got := text(ruleset.Render(fixture.Snapshot(), ruleset.Options{Table: "palisade"}))
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if !strings.Contains(line, " inet palisade") {
			t.Fatalf("line outside table palisade: %s", line)
		}
	}
}

// Equal decides "nothing to apply"; it must see every kind of difference.
func TestEqualSeesEveryDifference(t *testing.T) {
	render := func() *ruleset.Ruleset { return ruleset.Render(fixture.Snapshot(), ruleset.Options{}) }
	if a, b := render(), render(); !a.Equal(b) || a.Digest() != b.Digest() {
		t.Fatal("equal input renders unequal")
	}
	changes := map[string]func(r *ruleset.Ruleset){
		"table":      func(r *ruleset.Ruleset) { r.Table = "other" },
		"rule":       func(r *ruleset.Ruleset) { r.Chains[0].Rules[0] += " " },
		"chain name": func(r *ruleset.Ruleset) { r.Chains[1].Name = "x" },
		"base chain": func(r *ruleset.Ruleset) {
			r.Chains[0].Base = &ruleset.BaseChain{Type: "filter", Hook: "forward", Priority: "filter", Policy: "accept"}
		},
		"element key": func(r *ruleset.Ruleset) {
			r.Sets[3].Elements[0].Key = append([]string{"x"}, r.Sets[3].Elements[0].Key[1:]...)
		},
		"element value": func(r *ruleset.Ruleset) { r.Sets[3].Elements[0].Value = "goto other" },
		"set type":      func(r *ruleset.Ruleset) { r.Sets[0].Interval = false },
		"counter":       func(r *ruleset.Ruleset) { r.Counters = r.Counters[1:] },
	}
	for name, change := range changes {
		a, b := render(), render()
		change(b)
		if a.Equal(b) || b.Equal(a) {
			t.Errorf("%s: change not seen", name)
		}
	}
}

// The caching Renderer renders exactly what Render renders, through changes of either half,
// of logging, and to and from empty inputs.
func TestRendererEqualsRender(t *testing.T) {
	fw := fixture.Firewall()
	pols, _ := model.ComposePolicies(fw, fixture.Policies())
	services, _ := model.ComposeServices(fw, fixture.Services())
	otherPols, _ := model.ComposePolicies(fw, fixture.Policies()[1:])
	otherSvcs, _ := model.ComposeServices(fw, fixture.Services()[:2])
	logged := fw
	logged.LogAccepted = true
	steps := []model.Snapshot{
		{Firewall: fw, Policies: pols, Services: services},
		{Firewall: fw, Policies: pols, Services: services},      // unchanged: both parts reused
		{Firewall: fw, Policies: otherPols, Services: services}, // policies changed
		{Firewall: fw, Policies: otherPols, Services: otherSvcs},
		{Firewall: logged, Policies: otherPols, Services: otherSvcs}, // logging changes every object chain
		{Firewall: fw, Policies: nil, Services: otherSvcs},
		{Firewall: fw, Policies: pols, Services: nil},
	}
	r := ruleset.NewRenderer(ruleset.Options{Table: "t"})
	for i, snap := range steps {
		got, want := r.Render(snap), ruleset.Render(snap, ruleset.Options{Table: "t"})
		if !got.Equal(want) {
			t.Errorf("step %d: cached render differs:\n%s\n---\n%s", i, text(got), text(want))
		}
	}
}
