package nft

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

func render(fw model.Firewall, p []model.PolicyInput, s []model.ServiceInput) *ruleset.Ruleset {
	snap, _ := model.Compose(fw, p, s)
	return ruleset.Render(snap, ruleset.Options{})
}

// A delta applied on top of A must leave exactly what a full apply of B leaves.
func TestDeltaEqualsFull(t *testing.T) {
	ctx := context.Background()
	fw := fixture.Firewall()
	policies, services := fixture.Policies(), fixture.Services()
	a := render(fw, policies, services)

	changed := slices.Clone(policies[1:]) // drop one policy
	changed[0].Spec.Egress[0].To = append(changed[0].Spec.Egress[0].To, model.IPBlock{CIDR: "8.8.8.8/32"})
	changedSvcs := slices.Clone(services)
	changedSvcs[1].Spec.SourceRanges = []string{"198.51.100.0/25"}
	changedSvcs = append(changedSvcs, model.ServiceInput{Key: model.ObjectKey{Source: "shoot", Namespace: "new", Name: "svc"},
		Spec: model.ServiceSpec{IPs: []string{"185.1.2.99"}, Ports: []model.ServicePort{{Protocol: "TCP", Port: 80}}}})
	b := render(fw, changed, changedSvcs)

	s1, nft1 := newScratch(t, "firewall")
	ap := New(nft1, Options{RuleFile: filepath.Join(t.TempDir(), "rules.v4")})
	t.Cleanup(func() { _ = ap.WaitFile(context.Background()) }) // before the temporary directory goes
	if res, err := ap.Apply(ctx, a); err != nil || !res.Full {
		t.Fatalf("first apply: full=%v err=%v", res.Full, err)
	}
	res, err := ap.Apply(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Full {
		t.Fatal("second apply should be a delta")
	}

	s2, nft2 := newScratch(t, "firewall")
	if _, err := New(nft2, Options{}).Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, want := normalize(s1.List(t, "firewall", false)), normalize(s2.List(t, "firewall", false)); got != want {
		t.Errorf("delta result differs from full apply:\n--- delta\n%s\n--- full\n%s", got, want)
	}
}

// Nothing runs when nothing changed; counters survive changes.
func TestNoOpAndCountersSurvive(t *testing.T) {
	ctx := context.Background()
	s, iface := newScratch(t, "firewall")
	file := filepath.Join(t.TempDir(), "rules.v4")
	ap := New(iface, Options{RuleFile: file})
	t.Cleanup(func() { _ = ap.WaitFile(context.Background()) }) // before the temporary directory goes
	r := render(fixture.Firewall(), fixture.Policies(), fixture.Services())
	if _, err := ap.Apply(ctx, r); err != nil {
		t.Fatal(err)
	}
	// Give a counter a value, as traffic would (add on an existing counter keeps its value,
	// so delete and re-create it with one).
	s.Exec(t, "nft", "delete", "rule", "inet", "firewall", "forward", "handle", forwardRuleHandle(t, s, ruleset.CounterEstablished))
	s.Exec(t, "nft", "delete", "counter", "inet", "firewall", ruleset.CounterEstablished)
	s.Exec(t, "nft", "add", "counter", "inet", "firewall", ruleset.CounterEstablished, "{", "packets", "7", "bytes", "700", "}")
	before := s.List(t, "firewall", true)
	if got := counterLine(before, ruleset.CounterEstablished); got != "packets 7 bytes 700" {
		t.Fatalf("counter setup failed: %q", got)
	}

	nl := s.Netlink(t, "firewall")
	if got, err := nl.Counters(ctx); err != nil || got[ruleset.CounterEstablished] != (CounterValue{Packets: 7, Bytes: 700}) {
		t.Fatalf("netlink counters: %v %v", got[ruleset.CounterEstablished], err)
	}
	// A new applier knows nothing and does a full sync (listing over netlink); the counter
	// must keep its value.
	fresh := New(iface, Options{Netlink: nl})
	if res, err := fresh.Apply(ctx, r); err != nil || !res.Full {
		t.Fatalf("full resync: full=%v err=%v", res.Full, err)
	}
	// An unchanged ruleset runs nft not even once.
	calls := s.Calls(t)
	res, err := fresh.Apply(ctx, render(fixture.Firewall(), fixture.Policies(), fixture.Services()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || s.Calls(t) != calls {
		t.Errorf("unchanged ruleset: changed=%v, nft ran %d times", res.Changed, s.Calls(t)-calls)
	}
	after := s.List(t, "firewall", true)
	if counterLine(before, ruleset.CounterEstablished) != counterLine(after, ruleset.CounterEstablished) {
		t.Errorf("counter changed by resync:\nbefore %s\nafter  %s", counterLine(before, ruleset.CounterEstablished), counterLine(after, ruleset.CounterEstablished))
	}
	if err := ap.WaitFile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("rule file not written: %v", err)
	}
}

// normalize makes a table listing independent of creation order: top-level objects are
// sorted, and so are set elements; the order of rules inside a chain is kept.
func normalize(listing string) string {
	var blocks []string
	var cur []string
	flush := func() {
		if len(cur) == 0 {
			return
		}
		text := strings.Join(cur, "\n")
		if i := strings.Index(text, "elements = {"); i >= 0 {
			j := strings.Index(text[i:], "}")
			elems := strings.Split(text[i+len("elements = {"):i+j], ",")
			for k := range elems {
				elems[k] = strings.TrimSpace(elems[k])
			}
			slices.Sort(elems)
			text = text[:i] + "elements = {" + strings.Join(elems, ", ") + text[i+j:]
		}
		blocks = append(blocks, text)
		cur = nil
	}
	for _, line := range strings.Split(listing, "\n") {
		if strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, "\t\t") && line != "\t}" {
			flush()
		}
		if strings.TrimSpace(line) != "" && line != "}" && !strings.HasPrefix(line, "table ") {
			cur = append(cur, line)
		}
	}
	flush()
	slices.Sort(blocks)
	return strings.Join(blocks, "\n")
}

// forwardRuleHandle finds the handle of the forward rule using the named counter.
func forwardRuleHandle(t *testing.T, s *scratch, counter string) string {
	t.Helper()
	for _, line := range strings.Split(s.Exec(t, "nft", "-a", "list", "chain", "inet", "firewall", "forward"), "\n") {
		if strings.Contains(line, "counter name \""+counter+"\"") {
			f := strings.Fields(line)
			return f[len(f)-1]
		}
	}
	t.Fatalf("no forward rule uses %s", counter)
	return ""
}

func counterLine(listing, name string) string {
	lines := strings.Split(listing, "\n")
	for i, l := range lines {
		if strings.Contains(l, "counter "+name+" {") && i+1 < len(lines) {
			return strings.TrimSpace(lines[i+1])
		}
	}
	return ""
}

// A ruleset the kernel rejects leaves the previous one in place, in the kernel and on disk.
func TestFailedApplyKeepsPrevious(t *testing.T) {
	ctx := context.Background()
	s, iface := newScratch(t, "firewall")
	file := filepath.Join(t.TempDir(), "rules.v4")
	ap := New(iface, Options{RuleFile: file})
	t.Cleanup(func() { _ = ap.WaitFile(context.Background()) }) // before the temporary directory goes
	good := render(fixture.Firewall(), fixture.Policies(), fixture.Services())
	if _, err := ap.Apply(ctx, good); err != nil {
		t.Fatal(err)
	}
	if err := ap.WaitFile(ctx); err != nil {
		t.Fatal(err)
	}
	liveBefore := s.List(t, "firewall", false)
	fileBefore, _ := os.ReadFile(file)

	bad := render(fixture.Firewall(), fixture.Policies()[:2], fixture.Services())
	bad.Chains[0].Rules = append(bad.Chains[0].Rules, "ip saddr 10.0.0.0/8 this-is-not-nft accept")
	for _, check := range []bool{false, true} { // rejected by the apply itself, and by nft --check
		ap.opts.Check = check
		_, err := ap.Apply(ctx, bad)
		if err == nil {
			t.Fatalf("check=%v: invalid ruleset accepted", check)
		}
		if !strings.Contains(err.Error(), "this-is-not-nft") {
			t.Errorf("check=%v: error does not name the offending rule: %v", check, err)
		}
		if !PreviousKept(err) || !strings.HasSuffix(err.Error(), "previous ruleset kept") {
			t.Errorf("check=%v: a refused transaction must say the previous ruleset is kept: %v", check, err)
		}
		if got := s.List(t, "firewall", false); got != liveBefore {
			t.Errorf("check=%v: live ruleset changed after failed apply", check)
		}
		if err := ap.WaitFile(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(file); string(got) != string(fileBefore) {
			t.Errorf("check=%v: rule file changed after failed apply", check)
		}
	}
	// The next good apply recovers with a full sync.
	res, err := ap.Apply(ctx, render(fixture.Firewall(), fixture.Policies()[:2], fixture.Services()))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed {
		t.Error("recovery apply did nothing")
	}
}

// Other tables are never touched, and the rule file loads on its own at boot.
func TestOtherTablesUntouchedAndFileLoads(t *testing.T) {
	ctx := context.Background()
	s, iface := newScratch(t, "firewall")
	s.Exec(t, "nft", "add", "table", "inet", "metal")
	s.Exec(t, "nft", "add", "chain", "inet", "metal", "forward", "{ type filter hook forward priority 0 ; policy accept ; }")
	s.Exec(t, "nft", "add", "rule", "inet", "metal", "forward", "ct state invalid drop")
	metalBefore := s.List(t, "metal", false)

	file := filepath.Join(t.TempDir(), "rules.v4")
	ap := New(iface, Options{RuleFile: file})
	t.Cleanup(func() { _ = ap.WaitFile(context.Background()) }) // before the temporary directory goes
	if _, err := ap.Apply(ctx, render(fixture.Firewall(), fixture.Policies(), fixture.Services())); err != nil {
		t.Fatal(err)
	}
	if _, err := ap.Apply(ctx, render(fixture.Firewall(), nil, nil)); err != nil {
		t.Fatal(err)
	}
	if got := s.List(t, "metal", false); got != metalBefore {
		t.Errorf("table inet metal changed:\n%s", got)
	}
	if err := ap.WaitFile(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Boot: flush ruleset, then the file.
	if err := CheckInScratchNetns(ctx, "flush ruleset\n"+string(data)); err != nil {
		t.Fatal(err)
	}
	listed, err := ListInScratchNetns(ctx, string(data), "firewall")
	if err != nil {
		t.Fatal(err)
	}
	if listed != s.List(t, "firewall", false) {
		t.Errorf("the rule file does not reproduce the live table")
	}
}

// The netlink lister names the same objects as nft's JSON listing, and an empty inventory
// for a missing table.
func TestNetlinkInventoryMatchesJSON(t *testing.T) {
	ctx := context.Background()
	s, iface := newScratch(t, "firewall")
	nl := s.Netlink(t, "firewall")
	if inv, err := nl.Inventory(ctx); err != nil || len(inv.Chains)+len(inv.Sets)+len(inv.Maps)+len(inv.Counters) != 0 {
		t.Fatalf("missing table: %+v %v", inv, err)
	}
	if _, err := New(iface, Options{}).Apply(ctx, render(fixture.Firewall(), fixture.Policies(), fixture.Services())); err != nil {
		t.Fatal(err)
	}
	viaNetlink, err := nl.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	viaJSON, err := jsonLister{nft: iface}.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []struct {
		name      string
		got, want []string
	}{{"chains", viaNetlink.Chains, viaJSON.Chains}, {"sets", viaNetlink.Sets, viaJSON.Sets}, {"maps", viaNetlink.Maps, viaJSON.Maps}, {"counters", viaNetlink.Counters, viaJSON.Counters}} {
		if g, w := slices.Sorted(slices.Values(kind.got)), slices.Sorted(slices.Values(kind.want)); len(w) == 0 || !slices.Equal(g, w) {
			t.Errorf("%s: netlink %v, json %v", kind.name, g, w)
		}
	}
}

func TestDiff(t *testing.T) {
	ctx := context.Background()
	_, iface := newScratch(t, "firewall")
	ap := New(iface, Options{})
	r := render(fixture.Firewall(), fixture.Policies(), fixture.Services())
	// Diff runs nft on the host for the live side, so only compare two scratch listings.
	text := ap.Text(r)
	want, err := ListInScratchNetns(ctx, text, "firewall")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(want, "map cwnp_egress_v4") || !strings.Contains(want, "chain forward") {
		t.Errorf("scratch listing incomplete:\n%s", want)
	}
}

// A change of map elements only goes through one netlink batch and leaves exactly what a
// full apply through nft leaves, in both directions (adds and deletes), IPv4 and IPv6.
func TestNetlinkElementDeltaEqualsFull(t *testing.T) {
	ctx := context.Background()
	fw := fixture.Firewall()
	policies, services := fixture.Policies(), fixture.Services()
	a := render(fw, policies, services)
	changed := slices.Clone(policies)
	changed[0].Spec.Egress = slices.Clone(changed[0].Spec.Egress)
	changed[0].Spec.Egress[0].To = append(slices.Clone(changed[0].Spec.Egress[0].To), model.IPBlock{CIDR: "8.8.8.0/24"}, model.IPBlock{CIDR: "2001:db8:99::/48"})
	changedSvcs := slices.Clone(services)
	changedSvcs[1].Spec.SourceRanges = []string{"198.51.100.0/25"}
	b := render(fw, changed, changedSvcs)

	s1, nft1 := newScratch(t, "firewall")
	ap := New(nft1, Options{Netlink: s1.Netlink(t, "firewall")})
	if _, err := ap.Apply(ctx, a); err != nil {
		t.Fatal(err)
	}
	for i, step := range []*ruleset.Ruleset{b, a} {
		calls := s1.Calls(t)
		res, err := ap.Apply(ctx, step)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Netlink || res.Operations == 0 || s1.Calls(t) != calls {
			t.Fatalf("step %d: netlink=%v operations=%d nft calls=%d", i, res.Netlink, res.Operations, s1.Calls(t)-calls)
		}
		s2, nft2 := newScratch(t, "firewall")
		if _, err := New(nft2, Options{}).Apply(ctx, step); err != nil {
			t.Fatal(err)
		}
		if got, want := normalize(s1.List(t, "firewall", false)), normalize(s2.List(t, "firewall", false)); got != want {
			t.Errorf("step %d: netlink delta differs from full apply:\n--- netlink\n%s\n--- full\n%s", i, got, want)
		}
	}
}

// lyingLister reports a table that lacks one chain, as if something had removed it right
// after the commit.
type lyingLister struct{ Lister }

func (l lyingLister) Inventory(ctx context.Context) (Inventory, error) {
	inv, err := l.Lister.Inventory(ctx)
	if len(inv.Chains) > 0 {
		inv.Chains = inv.Chains[1:]
	}
	return inv, err
}

// The apply report tells the truth: a duplicate object never reaches the kernel ("kept" is
// true), and a committed transaction whose read back differs never claims the previous
// ruleset was kept.
func TestApplyReportTellsTheTruth(t *testing.T) {
	ctx := context.Background()
	s, iface := newScratch(t, "firewall")
	ap := New(iface, Options{})
	dup := render(fixture.Firewall(), fixture.Policies(), fixture.Services())
	dup.Chains = append(dup.Chains, dup.Chains[len(dup.Chains)-1])
	_, err := ap.Apply(ctx, dup)
	if err == nil || !PreviousKept(err) || !strings.Contains(err.Error(), "twice; nothing sent to the kernel") {
		t.Fatalf("duplicate chain: %v", err)
	}
	if got := s.Exec(t, "nft", "list", "tables"); strings.Contains(got, "firewall") {
		t.Errorf("a refused ruleset reached the kernel:\n%s", got)
	}

	ap.lister = lyingLister{ap.lister}
	good := render(fixture.Firewall(), fixture.Policies(), fixture.Services())
	_, err = ap.Apply(ctx, good)
	if err == nil || PreviousKept(err) || strings.Contains(err.Error(), "previous ruleset kept") ||
		!strings.Contains(err.Error(), "ruleset applied, but reading it back") {
		t.Fatalf("read-back mismatch: %v", err)
	}
	if !strings.Contains(s.List(t, "firewall", false), "chain forward") {
		t.Error("the kernel should hold the new ruleset")
	}
}
