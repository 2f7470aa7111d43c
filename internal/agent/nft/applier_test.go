package nft

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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
		Spec: model.ServiceSpec{IPs: []string{"10.2.0.99"}, Ports: []model.ServicePort{{Protocol: "TCP", Port: 80}}}})
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

// Nothing reaches the kernel when nothing changed; counters survive every apply.
func TestNoOpAndCountersSurvive(t *testing.T) {
	ctx := context.Background()
	s, nl := newScratch(t, "firewall")
	file := filepath.Join(t.TempDir(), "rules.v4")
	ap := New(nl, Options{RuleFile: file})
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
	if got, err := nl.Counters(ctx); err != nil || got[ruleset.CounterEstablished] != (CounterValue{Packets: 7, Bytes: 700}) {
		t.Fatalf("netlink counters: %v %v", got[ruleset.CounterEstablished], err)
	}
	// A new applier knows nothing and does a full sync; the counter keeps its value.
	k := &counting{Kernel: nl}
	fresh := New(k, Options{})
	if res, err := fresh.Apply(ctx, r); err != nil || !res.Full {
		t.Fatalf("full resync: full=%v err=%v", res.Full, err)
	}
	// A delta keeps it too.
	changed := fixture.Policies()[1:]
	if res, err := fresh.Apply(ctx, render(fixture.Firewall(), changed, fixture.Services())); err != nil || res.Full {
		t.Fatalf("delta: full=%v err=%v", res.Full, err)
	}
	// An unchanged ruleset does not reach the kernel at all.
	commits := k.commits
	res, err := fresh.Apply(ctx, render(fixture.Firewall(), changed, fixture.Services()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || k.commits != commits {
		t.Errorf("unchanged ruleset: changed=%v, %d commits", res.Changed, k.commits-commits)
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

// What the kernel holds after a netlink apply is exactly what nft makes of the rule file:
// one text, one bytecode. Every rule shape the renderer emits is in the fixture (with and
// without accept logging), including the toFQDNs rules (one port, a port range, a protocol
// without port, no ports) and the DNS redirect.
func TestNetlinkEqualsNft(t *testing.T) {
	ctx := context.Background()
	udp := "UDP"
	first, last := int32(8000), int32(8080)
	fqdn := fqdnPolicy("github", "api.github.com")
	fqdn.Spec.Egress = append(fqdn.Spec.Egress,
		model.EgressRule{Ports: []model.PolicyPort{{Protocol: &udp}, {Port: &first, EndPort: &last}}, ToFQDNs: []model.FQDNSelector{{MatchPattern: "*.github.com"}}},
		model.EgressRule{ToFQDNs: []model.FQDNSelector{{MatchName: "gitlab.com"}}})
	for _, logAccepted := range []bool{false, true} {
		fw := fixture.Firewall()
		fw.LogAccepted = logAccepted
		snap, _ := model.Compose(fw, append(fixture.Policies(), model.DefaultEgress(), fqdn, model.PolicyInput{Key: model.ObjectKey{Source: "shoot", Name: "all"},
			Spec: model.PolicySpec{Egress: []model.EgressRule{{To: []model.IPBlock{{CIDR: "192.0.2.0/24"}, {CIDR: "2001:db8:5::/48"}}}}, Ingress: []model.IngressRule{{}}}}), fixture.Services())
		r := ruleset.Render(snap, ruleset.Options{DNSProxyPort: 5353})
		if !strings.Contains(Text(r), "redirect to :5353") || !strings.Contains(Text(r), "th dport 8000-8080 goto") ||
			!regexp.MustCompile(`daddr @fqdn-\S+ goto `).MatchString(Text(r)) {
			t.Fatalf("the FQDN rule shapes are missing:\n%s", Text(r))
		}
		s, nl := newScratch(t, "firewall")
		if _, err := New(nl, Options{}).Apply(ctx, r); err != nil {
			t.Fatal(err)
		}
		viaNft, err := ListInScratchNetns(ctx, Text(r), "firewall")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := normalize(s.List(t, "firewall", false)), normalize(viaNft); got != want {
			t.Errorf("logAccepted=%v: netlink differs from nft:\n%s", logAccepted, lineDiff(got, want))
		}
	}
}

func lineDiff(got, want string) string {
	var out []string
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "netlink: "+l)
		}
	}
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "nft:     "+l)
		}
	}
	return strings.Join(out, "\n")
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

// A ruleset the kernel (or the compiler before it) rejects leaves the previous one in
// place, in the kernel and on disk.
func TestFailedApplyKeepsPrevious(t *testing.T) {
	ctx := context.Background()
	s, nl := newScratch(t, "firewall")
	file := filepath.Join(t.TempDir(), "rules.v4")
	ap := New(nl, Options{RuleFile: file})
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

	for _, c := range []struct{ rule, want string }{
		{"ip saddr 10.0.0.0/8 this-is-not-nft accept", "this-is-not-nft"}, // refused before the kernel
		{"jump no-such-chain", "the kernel refused the ruleset"},          // refused by the kernel
	} {
		bad := render(fixture.Firewall(), fixture.Policies()[:2], fixture.Services())
		bad.Chains[0].Rules = append(slices.Clone(bad.Chains[0].Rules), c.rule)
		_, err := ap.Apply(ctx, bad)
		if err == nil {
			t.Fatalf("%s: invalid ruleset accepted", c.rule)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error does not say %q: %v", c.rule, c.want, err)
		}
		if !PreviousKept(err) || !strings.HasSuffix(err.Error(), "previous ruleset kept") {
			t.Errorf("%s: a refused transaction must say the previous ruleset is kept: %v", c.rule, err)
		}
		if got := s.List(t, "firewall", false); got != liveBefore {
			t.Errorf("%s: live ruleset changed after failed apply", c.rule)
		}
		if err := ap.WaitFile(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(file); string(got) != string(fileBefore) {
			t.Errorf("%s: rule file changed after failed apply", c.rule)
		}
	}
	// The next good apply recovers with a full sync.
	res, err := ap.Apply(ctx, render(fixture.Firewall(), fixture.Policies()[:2], fixture.Services()))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !res.Full {
		t.Errorf("recovery apply: %+v", res)
	}
}

// Other tables are never touched, and the rule file loads on its own at boot.
func TestOtherTablesUntouchedAndFileLoads(t *testing.T) {
	ctx := context.Background()
	s, nl := newScratch(t, "firewall")
	s.Exec(t, "nft", "add", "table", "inet", "metal")
	s.Exec(t, "nft", "add", "chain", "inet", "metal", "forward", "{ type filter hook forward priority 0 ; policy accept ; }")
	s.Exec(t, "nft", "add", "rule", "inet", "metal", "forward", "ct state invalid drop")
	metalBefore := s.List(t, "metal", false)

	file := filepath.Join(t.TempDir(), "rules.v4")
	ap := New(nl, Options{RuleFile: file})
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
	if got, want := normalize(listed), normalize(s.List(t, "firewall", false)); got != want {
		t.Errorf("the rule file does not reproduce the live table:\n%s", lineDiff(got, want))
	}
}

// The netlink listing names exactly the rendered objects, and nothing for a missing table.
func TestNetlinkInventory(t *testing.T) {
	ctx := context.Background()
	_, nl := newScratch(t, "firewall")
	if inv, err := nl.Inventory(ctx); err != nil || len(inv.Chains)+len(inv.Sets)+len(inv.Maps)+len(inv.Counters) != 0 {
		t.Fatalf("missing table: %+v %v", inv, err)
	}
	r := render(fixture.Firewall(), fixture.Policies(), fixture.Services())
	if _, err := New(nl, Options{}).Apply(ctx, r); err != nil {
		t.Fatal(err)
	}
	inv, err := nl.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chains, sets, counters := names(r)
	if len(inv.Chains) != len(chains) || len(inv.Sets)+len(inv.Maps) != len(sets) || len(inv.Counters) != len(counters) {
		t.Errorf("inventory %+v for %d chains, %d sets, %d counters", inv, len(chains), len(sets), len(counters))
	}
}

func TestDiff(t *testing.T) {
	ctx := context.Background()
	r := render(fixture.Firewall(), fixture.Policies(), fixture.Services())
	// Diff runs nft on the host for the live side, so only compare two scratch listings.
	requireNFT(t)
	text := Text(r)
	want, err := ListInScratchNetns(ctx, text, "firewall")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(want, "map cwnp_egress_v4") || !strings.Contains(want, "chain forward") {
		t.Errorf("scratch listing incomplete:\n%s", want)
	}
}

// A change of set elements only is a small delta without read back and leaves exactly what a
// full apply leaves, in both directions (adds and deletes), IPv4 and IPv6, for concatenated
// maps and for the plain interval sets (a new load-balancer IP).
func TestElementDeltaEqualsFull(t *testing.T) {
	ctx := context.Background()
	fw := fixture.Firewall()
	policies, services := fixture.Policies(), fixture.Services()
	a := render(fw, policies, services)
	changed := slices.Clone(policies)
	changed[0].Spec.Egress = slices.Clone(changed[0].Spec.Egress)
	changed[0].Spec.Egress[0].To = append(slices.Clone(changed[0].Spec.Egress[0].To), model.IPBlock{CIDR: "8.8.8.0/24"}, model.IPBlock{CIDR: "2001:db8:99::/48"})
	changedSvcs := slices.Clone(services)
	changedSvcs[1].Spec.SourceRanges = []string{"198.51.100.0/25"}
	changedSvcs[0].Spec.IPs = append(slices.Clone(changedSvcs[0].Spec.IPs), "10.2.0.77")
	b := render(fw, changed, changedSvcs)

	s1, nl1 := newScratch(t, "firewall")
	ap := New(nl1, Options{})
	if _, err := ap.Apply(ctx, a); err != nil {
		t.Fatal(err)
	}
	for i, step := range []*ruleset.Ruleset{b, a} {
		res, err := ap.Apply(ctx, step)
		if err != nil {
			t.Fatal(err)
		}
		if res.Full || res.Operations == 0 || res.ReadBack != 0 {
			t.Fatalf("step %d: %+v", i, res)
		}
		s2, nl2 := newScratch(t, "firewall")
		if _, err := New(nl2, Options{}).Apply(ctx, step); err != nil {
			t.Fatal(err)
		}
		if got, want := normalize(s1.List(t, "firewall", false)), normalize(s2.List(t, "firewall", false)); got != want {
			t.Errorf("step %d: element delta differs from full apply:\n%s", i, lineDiff(got, want))
		}
	}
}

// lyingLister reports a table that lacks one chain, as if something had removed it right
// after the commit.
type lyingLister struct{ Kernel }

func (l lyingLister) Inventory(ctx context.Context) (Inventory, error) {
	inv, err := l.Kernel.Inventory(ctx)
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
	s, nl := newScratch(t, "firewall")
	ap := New(nl, Options{})
	dup := render(fixture.Firewall(), fixture.Policies(), fixture.Services())
	dup.Chains = append(dup.Chains, dup.Chains[len(dup.Chains)-1])
	_, err := ap.Apply(ctx, dup)
	if err == nil || !PreviousKept(err) || !strings.Contains(err.Error(), "twice; nothing sent to the kernel") {
		t.Fatalf("duplicate chain: %v", err)
	}
	if got := s.Exec(t, "nft", "list", "tables"); strings.Contains(got, "firewall") {
		t.Errorf("a refused ruleset reached the kernel:\n%s", got)
	}

	ap.kernel = lyingLister{ap.kernel}
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

// The element API for other agent parts (a DNS proxy filling per-policy FQDN sets): elements
// with a timeout go into a named set of the table in one transaction, and out again.
func TestAddElementsWithTimeout(t *testing.T) {
	ctx := context.Background()
	s, nl := newScratch(t, "firewall")
	s.Exec(t, "nft", "add", "table", "inet", "firewall")
	s.Exec(t, "nft", "add", "set", "inet", "firewall", "fqdn_v4", "{ type ipv4_addr ; flags timeout ; }")
	s.Exec(t, "nft", "add", "set", "inet", "firewall", "fqdn_v6", "{ type ipv6_addr ; flags timeout ; }")
	if err := nl.AddElements(ctx, "fqdn_v4", "ipv4_addr", []SetElement{{Key: []string{"192.0.2.7"}}, {Key: []string{"192.0.2.8"}}}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := nl.AddElements(ctx, "fqdn_v6", "ipv6_addr", []SetElement{{Key: []string{"2001:db8::7"}}}, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	v4, v6 := s.Exec(t, "nft", "list", "set", "inet", "firewall", "fqdn_v4"), s.Exec(t, "nft", "list", "set", "inet", "firewall", "fqdn_v6")
	if !strings.Contains(v4, "192.0.2.7 timeout 1h expires") || !strings.Contains(v4, "192.0.2.8 timeout 1h") || !strings.Contains(v6, "2001:db8::7 timeout 1m30s") {
		t.Fatalf("elements with timeout:\n%s\n%s", v4, v6)
	}
	if err := nl.DeleteElements(ctx, "fqdn_v4", "ipv4_addr", []SetElement{{Key: []string{"192.0.2.7"}}}); err != nil {
		t.Fatal(err)
	}
	if v4 := s.Exec(t, "nft", "list", "set", "inet", "firewall", "fqdn_v4"); strings.Contains(v4, "192.0.2.7") || !strings.Contains(v4, "192.0.2.8") {
		t.Errorf("after delete:\n%s", v4)
	}
	if err := nl.AddElements(ctx, "fqdn_v4", "ipv4_addr", []SetElement{{Key: []string{"not-an-ip"}}}, time.Hour); err == nil {
		t.Error("a bad element was accepted")
	}
}

// AddToSets, what the DNS proxy writes through: several sets with a timeout per element in
// one transaction, all or nothing (a set that does not exist fails the whole transaction),
// and the lasting connection keeps working after a refused transaction and a bad element.
func TestAddToSetsIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	s, nl := newScratch(t, "firewall")
	s.Exec(t, "nft", "add", "table", "inet", "firewall")
	s.Exec(t, "nft", "add", "set", "inet", "firewall", "fqdn_v4", "{ type ipv4_addr ; flags timeout ; }")
	s.Exec(t, "nft", "add", "set", "inet", "firewall", "fqdn_v6", "{ type ipv6_addr ; flags timeout ; }")
	timed := func(addr string, d time.Duration) TimedElement {
		return TimedElement{SetElement: SetElement{Key: []string{addr}}, Timeout: d}
	}
	both := []SetUpdate{
		{Set: "fqdn_v4", Type: "ipv4_addr", Elements: []TimedElement{timed("192.0.2.1", time.Hour), timed("192.0.2.2", time.Minute)}},
		{Set: "fqdn_v6", Type: "ipv6_addr", Elements: []TimedElement{timed("2001:db8::1", 2*time.Minute)}},
	}
	if err := nl.AddToSets(ctx, both); err != nil {
		t.Fatal(err)
	}
	v4, v6 := s.Exec(t, "nft", "list", "set", "inet", "firewall", "fqdn_v4"), s.Exec(t, "nft", "list", "set", "inet", "firewall", "fqdn_v6")
	if !strings.Contains(v4, "192.0.2.1 timeout 1h") || !strings.Contains(v4, "192.0.2.2 timeout 1m") || !strings.Contains(v6, "2001:db8::1 timeout 2m") {
		t.Fatalf("per-element timeouts:\n%s\n%s", v4, v6)
	}
	partly := []SetUpdate{
		{Set: "fqdn_v4", Type: "ipv4_addr", Elements: []TimedElement{timed("192.0.2.3", time.Hour)}},
		{Set: "gone_v4", Type: "ipv4_addr", Elements: []TimedElement{timed("192.0.2.4", time.Hour)}},
	}
	if err := nl.AddToSets(ctx, partly); err == nil || !strings.Contains(err.Error(), "gone_v4") {
		t.Fatalf("a missing set must fail the transaction: %v", err)
	}
	if v4 := s.Exec(t, "nft", "list", "set", "inet", "firewall", "fqdn_v4"); strings.Contains(v4, "192.0.2.3") {
		t.Errorf("half a refused transaction reached the kernel:\n%s", v4)
	}
	if err := nl.AddToSets(ctx, []SetUpdate{{Set: "fqdn_v4", Type: "ipv4_addr", Elements: []TimedElement{timed("not-an-ip", time.Hour)}}}); err == nil {
		t.Error("a bad element was accepted")
	}
	if err := nl.AddToSets(ctx, partly[:1]); err != nil {
		t.Fatal(err)
	}
	if v4 := s.Exec(t, "nft", "list", "set", "inet", "firewall", "fqdn_v4"); !strings.Contains(v4, "192.0.2.3") {
		t.Errorf("the connection did not recover:\n%s", v4)
	}
}
