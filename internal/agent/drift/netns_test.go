package drift

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
	"github.com/palisade-fw/palisade/internal/agent/runner"
	"github.com/palisade-fw/palisade/internal/testenv/ci"
)

// netns is a throwaway network namespace with the applier's kernel path into it.
type netns struct {
	name string
	nl   *nft.Netlink
}

func newNetns(t testing.TB) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		ci.SkipOutsideCI(t, "needs root for network namespaces and nft")
	}
	for _, bin := range []string{"nft", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			ci.SkipOutsideCI(t, bin+" is not installed")
		}
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	n := &netns{name: "paldrift" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.name).Run() })
	nl, err := nft.NewNetlink("firewall", "/var/run/netns/"+n.name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nl.Close() })
	n.nl = nl
	return n
}

// nft runs nft in the namespace.
func (n *netns) nft(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.name, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nftScript runs `nft -f -` in the namespace: one transaction.
func (n *netns) nftScript(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", n.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f:\n%s\n%v %s", script, err, out)
	}
}

// repointable finds a verdict map element and a chain other than the one it jumps to.
func repointable(t *testing.T, r *ruleset.Ruleset) (string, ruleset.Element, string) {
	t.Helper()
	for _, s := range r.Sets {
		if !s.Map || len(s.Elements) < 2 {
			continue
		}
		first := s.Elements[0]
		for _, e := range s.Elements[1:] {
			if e.Value != first.Value {
				return s.Name, first, strings.TrimPrefix(e.Value, "goto ")
			}
		}
	}
	t.Fatal("no map with elements going to two chains")
	return "", ruleset.Element{}, ""
}

// ruleHandle finds the handle of the first rule of chain whose listing contains text.
func (n *netns) ruleHandle(t *testing.T, chain, text string) string {
	t.Helper()
	for _, line := range strings.Split(n.nft(t, "-a", "list", "chain", "inet", "firewall", chain), "\n") {
		if strings.Contains(line, text) && strings.Contains(line, "# handle ") {
			f := strings.Fields(line)
			return f[len(f)-1]
		}
	}
	t.Fatalf("no rule in %s holds %q", chain, text)
	return ""
}

func fqdnPolicy(name, host string) model.PolicyInput {
	port := int32(443)
	return model.PolicyInput{Key: model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: name},
		Spec: model.PolicySpec{Egress: []model.EgressRule{{Ports: []model.PolicyPort{{Port: &port}}, ToFQDNs: []model.FQDNSelector{{MatchName: host}}}}}}
}

// broadRuleset holds every rule and set shape the renderer emits: policies with ports, port
// ranges and CIDRs, services, toFQDNs sets, the DNS redirect, logging.
func broadRuleset(logAccepted bool) *ruleset.Ruleset {
	udp := "UDP"
	first, last := int32(8000), int32(8080)
	fqdn := fqdnPolicy("github", "api.github.com")
	fqdn.Spec.Egress = append(fqdn.Spec.Egress,
		model.EgressRule{Ports: []model.PolicyPort{{Protocol: &udp}, {Port: &first, EndPort: &last}}, ToFQDNs: []model.FQDNSelector{{MatchPattern: "*.github.com"}}})
	fw := fixture.Firewall()
	fw.LogAccepted = logAccepted
	snap, _ := model.Compose(fw, append(fixture.Policies(), model.DefaultEgress(), fqdn, model.PolicyInput{Key: model.ObjectKey{Source: "shoot", Name: "all"},
		Spec: model.PolicySpec{Egress: []model.EgressRule{{To: []model.IPBlock{{CIDR: "192.0.2.0/24"}, {CIDR: "2001:db8:5::/48"}}}}, Ingress: []model.IngressRule{{}}}}), fixture.Services())
	return ruleset.Render(snap, ruleset.Options{Table: "firewall", DNSProxyPort: 5353})
}

// Right after an apply the kernel's table compares equal to every rule and set shape the
// renderer emits: the comparison raises no false alarm.
func TestNoDriftRightAfterApply(t *testing.T) {
	ctx := context.Background()
	for _, logAccepted := range []bool{false, true} {
		n := newNetns(t)
		ap := nft.New(n.nl, nft.Options{})
		r := broadRuleset(logAccepted)
		if _, err := ap.Apply(ctx, r); err != nil {
			t.Fatal(err)
		}
		last, observed, err := ap.Observe(ctx)
		if err != nil || last == nil {
			t.Fatalf("observe: %v (last %v)", err, last)
		}
		want, err := nft.Expected(last)
		if err != nil {
			t.Fatal(err)
		}
		if diffs := Compare(want, observed); len(diffs) > 0 {
			t.Fatalf("logAccepted=%v: drift right after the apply: %s", logAccepted, Summary(diffs))
		}
		if len(observed.Chains) < 5 || len(observed.Sets) < 5 {
			t.Fatalf("observed too little: %d chains, %d sets", len(observed.Chains), len(observed.Sets))
		}
	}
}

// startRunner runs a runner on the fixture's inputs plus a toFQDNs policy.
func startRunner(t *testing.T, ctx context.Context, ap *nft.Applier) *runner.Runner {
	t.Helper()
	r := runner.New(ap, runner.Parts{Policies: true, Services: true}, runner.Options{Table: "firewall", Debounce: 10 * time.Millisecond})
	r.SetFirewall(fixture.Firewall())
	r.SetPolicies(append(fixture.Policies(), fqdnPolicy("github", "api.github.com")))
	r.SetServices(fixture.Services())
	go func() { _ = r.Run(ctx) }()
	return r
}

func waitFor(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: still %v", what, err)
}

type reports struct {
	ch chan Status
}

func (r *reports) report(st Status) {
	select {
	case r.ch <- st:
	default:
	}
}

// Hand edits with nft are found by the check, reported as the RulesetInSync condition and
// in the metrics, and repaired through the runner's normal apply (a full sync that keeps
// the named counters); with repairs off they are only reported. Elements the agent adds to
// its timeout sets itself (the DNS proxy's) are not drift.
func TestDriftDetectedReportedAndRepaired(t *testing.T) {
	type edit struct {
		name string
		do   func(t *testing.T, n *netns, applied *ruleset.Ruleset)
		want string // in the summary
	}
	edits := []edit{
		{"delete a rule", func(t *testing.T, n *netns, _ *ruleset.Ruleset) {
			n.nft(t, "delete", "rule", "inet", "firewall", "forward", "handle", n.ruleHandle(t, "forward", "ct state established,related"))
		}, "1 missing (first: `ct state established,related"},
		{"add a rule", func(t *testing.T, n *netns, _ *ruleset.Ruleset) {
			n.nft(t, "insert", "rule", "inet", "firewall", "forward", "ip", "saddr", "198.51.100.7", "accept")
		}, "1 not in the applied ruleset"},
		{"add an element to a static set", func(t *testing.T, n *netns, _ *ruleset.Ruleset) {
			set := firstStaticSet(t, n)
			n.nft(t, "add", "element", "inet", "firewall", set.name, "{ "+set.sample+" }")
		}, "elements not in the applied ruleset"},
		{"re-point a map element to another chain", func(t *testing.T, n *netns, applied *ruleset.Ruleset) {
			m, e, other := repointable(t, applied)
			n.nftScript(t, fmt.Sprintf("delete element inet firewall %s { %s }\nadd element inet firewall %s { %s : goto %s }\n",
				m, strings.Join(e.Key, " . "), m, strings.Join(e.Key, " . "), other))
		}, "1 elements missing"},
		{"flush a chain", func(t *testing.T, n *netns, _ *ruleset.Ruleset) {
			n.nft(t, "flush", "chain", "inet", "firewall", "forward")
		},
			"chain forward: 0 rules, expected "},
		{"delete the table", func(t *testing.T, n *netns, _ *ruleset.Ruleset) { n.nft(t, "delete", "table", "inet", "firewall") }, "table missing"},
	}
	for _, repair := range []bool{true, false} {
		for _, e := range edits {
			t.Run(fmt.Sprintf("%s/repair=%v", e.name, repair), func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				n := newNetns(t)
				ap := nft.New(n.nl, nft.Options{})
				r := startRunner(t, ctx, ap)
				reg := prometheus.NewRegistry()
				rep := &reports{ch: make(chan Status, 100)}
				opts := Options{Source: ap, Interval: time.Hour, Debounce: 50 * time.Millisecond, Registerer: reg, Report: rep.report}
				if repair {
					opts.Repair = func() { ap.Forget(); r.Notify() }
				}
				d := New(opts)
				r.AddObserver(d)
				go func() { _ = d.Run(ctx) }()
				go func() { _ = n.nl.Watch(ctx, d.Notify) }()

				waitFor(t, "first apply", func() error {
					if st := d.Check(ctx); !st.InSync() {
						return fmt.Errorf("not in sync: %+v", st)
					}
					return nil
				})
				// The DNS proxy's kind of element (in a timeout set, by the agent itself) is not
				// drift.
				learn := learnedSet(t, n)
				if err := n.nl.AddElements(ctx, learn, "ipv4_addr", []nft.SetElement{{Key: []string{"192.0.2.55"}}}, 2*time.Second); err != nil {
					t.Fatal(err)
				}
				if st := d.Check(ctx); !st.InSync() {
					t.Fatalf("a learned element counts as drift: %s", Summary(st.Differences))
				}
				counterBefore := counterValue(t, n, "drop_total")
				before := testutil.ToFloat64(d.drifts)

				applied, _, err := ap.Observe(ctx)
				if err != nil || applied == nil {
					t.Fatalf("nothing applied: %v", err)
				}
				e.do(t, n, applied)
				// The netlink notification triggers the check; no scheduled check runs
				// (Interval is an hour).
				var found Status
				waitFor(t, "drift found after the netlink notification", func() error {
					select {
					case st := <-rep.ch:
						if len(st.Differences) > 0 {
							found = st
							return nil
						}
					default:
					}
					return fmt.Errorf("no report with differences yet")
				})
				if !strings.Contains(Summary(found.Differences), e.want) {
					t.Errorf("summary %q does not say %q", Summary(found.Differences), e.want)
				}
				c := Condition(found)
				if c.Status != metav1.ConditionFalse || c.Reason != ReasonDrifted || !strings.Contains(c.Message, e.want) {
					t.Errorf("condition %+v", c)
				}
				if got := testutil.ToFloat64(d.drifts); got != before+1 {
					t.Errorf("drift_total %v, want %v", got, before+1)
				}
				if testutil.ToFloat64(d.lastCheck) == 0 {
					t.Error("no last-check timestamp")
				}

				if repair {
					waitFor(t, "repaired", func() error {
						st := d.Status()
						if !st.InSync() {
							return fmt.Errorf("still %s", Summary(st.Differences))
						}
						return nil
					})
					if testutil.ToFloat64(d.drifted) != 0 || testutil.ToFloat64(d.repairs) < 1 {
						t.Errorf("drifted %v, repairs %v", testutil.ToFloat64(d.drifted), testutil.ToFloat64(d.repairs))
					}
					if c := Condition(d.Status()); c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "last repaired") {
						t.Errorf("condition after the repair %+v", c)
					}
					if e.name != "delete the table" && counterValue(t, n, "drop_total") < counterBefore {
						t.Error("the repair reset the drop counter")
					}
					return
				}
				// Report only: later checks still find it, nothing repairs it.
				for range 3 {
					st := d.Check(ctx)
					if len(st.Differences) == 0 || st.Repairing {
						t.Fatalf("repair off: %+v", st)
					}
				}
				if testutil.ToFloat64(d.drifted) != 1 || testutil.ToFloat64(d.repairs) != 0 || testutil.ToFloat64(d.drifts) != before+1 {
					t.Errorf("drifted %v, repairs %v, drifts %v", testutil.ToFloat64(d.drifted), testutil.ToFloat64(d.repairs), testutil.ToFloat64(d.drifts))
				}
				if c := Condition(d.Status()); !strings.Contains(c.Message, "not repaired") {
					t.Errorf("condition %+v", c)
				}
			})
		}
	}
}

type staticSet struct{ name, sample string }

// firstStaticSet is a non-interval address set without timeout, with an element to add.
func firstStaticSet(t *testing.T, n *netns) staticSet {
	t.Helper()
	var name string
	for _, line := range strings.Split(n.nft(t, "list", "sets", "table", "inet", "firewall"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "set" {
			name = f[1]
		}
		if name != "" && strings.Contains(line, "type ipv4_addr") && !strings.Contains(line, ".") {
			listing := n.nft(t, "list", "set", "inet", "firewall", name)
			if !strings.Contains(listing, "timeout") {
				return staticSet{name: name, sample: "203.0.113.99"}
			}
		}
	}
	t.Fatal("no static ipv4 set")
	return staticSet{}
}

// learnedSet is an IPv4 toFQDNs timeout set.
func learnedSet(t *testing.T, n *netns) string {
	t.Helper()
	for _, line := range strings.Split(n.nft(t, "list", "sets", "table", "inet", "firewall"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "set" && strings.HasPrefix(f[1], "fqdn-") && strings.HasSuffix(f[1], "_v4") {
			return f[1]
		}
	}
	t.Fatal("no toFQDNs set")
	return ""
}

func counterValue(t *testing.T, n *netns, name string) uint64 {
	t.Helper()
	values, err := n.nl.Counters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return values[name].Packets
}
