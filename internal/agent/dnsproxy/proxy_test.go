package dnsproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/runner"
)

// recorder is a SetUpdater that remembers every batch.
type recorder struct {
	mu      sync.Mutex
	batches [][]Element
	fail    error
}

func (r *recorder) Add(_ context.Context, elems []Element) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.batches = append(r.batches, elems)
	return nil
}

func (r *recorder) all() map[elemKey]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[elemKey]time.Duration{}
	for _, b := range r.batches {
		for _, e := range b {
			out[elemKey{set: e.Set, addr: e.Addr}] = e.Timeout
		}
	}
	return out
}

// upstream is a resolver on loopback answering from a fixed zone.
func upstream(t *testing.T, zone map[string][]string) netip.AddrPort {
	t.Helper()
	return upstreamHandler(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		for _, s := range zone[model.CanonicalName(req.Question[0].Name)] {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Error(err)
				continue
			}
			m.Answer = append(m.Answer, rr)
		}
		_ = w.WriteMsg(m)
	}))
}

func upstreamHandler(tb testing.TB, h dns.Handler) netip.AddrPort {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
	go func() { _ = srv.ActivateAndServe() }()
	tb.Cleanup(func() { _ = srv.Shutdown() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func newTestProxy(t *testing.T, sets SetUpdater, reg prometheus.Registerer, mutate func(*Config)) *Proxy {
	t.Helper()
	cfg := Config{MinTTL: 10 * time.Second, MaxTTL: time.Hour, Sets: sets, Metrics: NewMetrics(reg), Now: func() time.Time { return now }}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func policies(t *testing.T, fw model.Firewall, rules ...model.EgressRule) []model.Policy {
	t.Helper()
	port := int32(443)
	for i := range rules {
		rules[i].Ports = []model.PolicyPort{{Port: &port}}
	}
	ps, verdicts := model.ComposePolicies(fw, []model.PolicyInput{{Key: model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: "p"}, Spec: model.PolicySpec{Egress: rules}}})
	if !verdicts[0].Accepted {
		t.Fatal(verdicts[0].Message)
	}
	return ps
}

func query(t *testing.T, p *Proxy, name string, qtype uint16) *dns.Msg {
	t.Helper()
	req := new(dns.Msg).SetQuestion(name, qtype)
	return p.answer(context.Background(), &dns.Client{Net: "udp", Timeout: 5 * time.Second}, req)
}

func TestLearnsMatchedNamesBeforeAnswering(t *testing.T) {
	up := upstream(t, map[string][]string{
		"api.example.com.":     {"api.example.com. 300 IN A 192.0.2.1", "api.example.com. 300 IN A 192.0.2.2"},
		"v6.example.com.":      {"v6.example.com. 300 IN AAAA 2001:db8::1"},
		"alias.example.com.":   {"alias.example.com. 60 IN CNAME edge.cdn.test.", "edge.cdn.test. 300 IN A 192.0.2.3"},
		"split.example.com.":   {"split.example.com. 300 IN CNAME far.cdn.test."},
		"far.cdn.test.":        {"far.cdn.test. 20 IN A 192.0.2.4"},
		"other.test.":          {"other.test. 300 IN A 192.0.2.9"},
		"short.example.com.":   {"short.example.com. 1 IN A 192.0.2.5"},
		"long.example.com.":    {"long.example.com. 86400 IN A 192.0.2.6"},
		"outside.example.com.": {"outside.example.com. 300 IN A 198.51.100.1"},
	})
	rec := &recorder{}
	reg := prometheus.NewPedanticRegistry()
	p := newTestProxy(t, rec, reg, func(c *Config) { c.Upstreams = []netip.AddrPort{up} })
	fw := model.ParseFirewall(model.FirewallSpec{AllowedNetworks: model.AllowedNetworks{Egress: []string{"192.0.2.0/24", "2001:db8::/32"}}})
	ps := policies(t, fw, model.EgressRule{ToFQDNs: []model.FQDNSelector{{MatchPattern: "*.EXAMPLE.com"}}})
	p.Synced(context.Background(), runner.SyncResult{Applied: true, Firewall: fw, Policies: ps})
	for _, name := range []string{"api.example.com.", "alias.example.com.", "split.example.com.", "other.test.", "short.example.com.", "long.example.com.", "outside.example.com."} {
		if r := query(t, p, name, dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Fatalf("%s: %v", name, r)
		}
	}
	query(t, p, "v6.example.com.", dns.TypeAAAA)

	got := map[netip.Addr]time.Duration{}
	for k, timeout := range rec.all() {
		got[k.addr] = timeout
	}
	want := map[string]time.Duration{
		"192.0.2.1":   300 * time.Second,
		"192.0.2.2":   300 * time.Second,
		"2001:db8::1": 300 * time.Second,
		"192.0.2.3":   60 * time.Second, // the least TTL along the CNAME chain
		"192.0.2.4":   20 * time.Second, // the chain finished by the proxy
		"192.0.2.5":   10 * time.Second, // floor
		"192.0.2.6":   time.Hour,        // ceiling
	}
	if len(got) != len(want) {
		t.Errorf("learned %v, want %v", got, want)
	}
	for a, d := range want {
		if got[netip.MustParseAddr(a)] != d {
			t.Errorf("%s: timeout %s, want %s", a, got[netip.MustParseAddr(a)], d)
		}
	}
	// The unmatched name and the address outside allowedNetworks were not opened.
	if _, ok := got[netip.MustParseAddr("192.0.2.9")]; ok {
		t.Error("unmatched name opened")
	}
	if _, ok := got[netip.MustParseAddr("198.51.100.1")]; ok {
		t.Error("address outside allowedNetworks opened")
	}
	if n := testutil.ToFloat64(p.cfg.Metrics.refused.WithLabelValues("allowed_networks")); n != 1 {
		t.Errorf("refused for allowedNetworks: %v", n)
	}
	if n := testutil.ToFloat64(p.cfg.Metrics.matched); n != 7 {
		t.Errorf("matched answers: %v", n)
	}
	// Every address went to the set of its own family.
	for k := range rec.all() {
		if k.addr.Is4() != (k.set[len(k.set)-3:] == "_v4") {
			t.Errorf("%s in %s", k.addr, k.set)
		}
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Errorf("metrics: %d %v", n, err)
	}

	// The status lists the names per selector, without writing anything.
	st := p.PolicyStates()[ps[0].Key]
	if names := st.Selectors["*.EXAMPLE.com"]; len(names) != 6 {
		t.Errorf("status names: %+v", names)
	}
}

// A later, shorter TTL never shortens an address's timeout.
func TestTimeoutsOnlyGrow(t *testing.T) {
	c := newCache(10, 10)
	a := netip.MustParseAddr("192.0.2.1")
	if exp, ok := c.learn("a.", a, now.Add(time.Hour), now); !ok || !exp.Equal(now.Add(time.Hour)) {
		t.Fatal(exp, ok)
	}
	if exp, _ := c.learn("a.", a, now.Add(time.Minute), now); !exp.Equal(now.Add(time.Hour)) {
		t.Errorf("shortened to %s", exp)
	}
	if exp, _ := c.learn("a.", a, now.Add(2*time.Hour), now); !exp.Equal(now.Add(2 * time.Hour)) {
		t.Errorf("not extended: %s", exp)
	}
}

// The caps hold; expired entries make room; the state survives a save and load.
func TestCacheCapAndPersistence(t *testing.T) {
	c := newCache(3, 4)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	for i := range 10 {
		c.learn("n"+string(rune('a'+i))+".", addr(i), now.Add(time.Minute), now)
	}
	if names, addrs := c.size(); names != 3 || addrs != 3 {
		t.Errorf("size %d names %d addresses, want 3 3", names, addrs)
	}
	if !c.fullSince(now.Add(-time.Second)) {
		t.Error("cap hit not recorded")
	}
	c.learn("na.", addr(100), now.Add(time.Minute), now)
	if _, ok := c.learn("na.", addr(101), now.Add(time.Minute), now); ok {
		t.Error("address cap not held")
	}
	// After expiry, new names fit again.
	later := now.Add(2 * time.Minute)
	if _, ok := c.learn("new.", addr(200), later.Add(time.Minute), later); !ok {
		t.Error("expired entries did not make room")
	}

	path := filepath.Join(t.TempDir(), "state", "dns.json")
	if err := c.save(path, later); err != nil {
		t.Fatal(err)
	}
	loaded := newCache(3, 4)
	if err := loaded.load(path, later); err != nil {
		t.Fatal(err)
	}
	if names, addrs := loaded.size(); names != 1 || addrs != 1 {
		t.Errorf("loaded %d names %d addresses, want 1 1", names, addrs)
	}
	// An expired state loads empty.
	empty := newCache(3, 4)
	if err := empty.load(path, later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if names, _ := empty.size(); names != 0 {
		t.Errorf("expired state loaded %d names", names)
	}
}

// A new policy for a known name, and a restart, get the learned addresses without a query.
func TestSyncedRestoresLearnedAddresses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dns.json")
	c := newCache(10, 10)
	c.learn("api.example.com.", netip.MustParseAddr("192.0.2.1"), now.Add(time.Minute), now)
	c.learn("api.example.com.", netip.MustParseAddr("2001:db8::1"), now.Add(time.Minute), now)
	if err := c.save(path, now); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	p := newTestProxy(t, rec, nil, func(cfg *Config) { cfg.StateFile = path })
	fw := model.ParseFirewall(model.FirewallSpec{})
	ps := policies(t, fw, model.EgressRule{ToFQDNs: []model.FQDNSelector{{MatchName: "API.example.com"}}})
	p.Synced(context.Background(), runner.SyncResult{Applied: true, Firewall: fw, Policies: ps})
	if got := rec.all(); len(got) != 2 {
		t.Errorf("restored %v", got)
	}
	// The same plan again writes nothing.
	p.Synced(context.Background(), runner.SyncResult{Applied: true, Firewall: fw, Policies: ps})
	if len(rec.batches) != 1 {
		t.Errorf("batches %d, want 1", len(rec.batches))
	}
}

// When the kernel refuses the addresses, the client gets SERVFAIL instead of an address the
// firewall would drop; an upstream that does not answer gives SERVFAIL too.
func TestFailuresAnswerServfail(t *testing.T) {
	up := upstream(t, map[string][]string{"api.example.com.": {"api.example.com. 300 IN A 192.0.2.1"}})
	rec := &recorder{fail: errors.New("no such set")}
	p := newTestProxy(t, rec, nil, func(c *Config) { c.Upstreams = []netip.AddrPort{up} })
	fw := model.ParseFirewall(model.FirewallSpec{})
	p.Synced(context.Background(), runner.SyncResult{Applied: true, Firewall: fw, Policies: policies(t, fw, model.EgressRule{ToFQDNs: []model.FQDNSelector{{MatchName: "api.example.com"}}})})
	if r := query(t, p, "api.example.com.", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}

	dead := newTestProxy(t, &recorder{}, nil, func(c *Config) {
		c.Upstreams = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
		c.Timeout = 200 * time.Millisecond
	})
	if r := query(t, dead, "api.example.com.", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	if n := testutil.ToFloat64(dead.cfg.Metrics.upstreamErrors); n != 1 {
		t.Errorf("upstream errors %v", n)
	}
}

func TestWalk(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cases := map[string]struct {
		answer    []dns.RR
		chain     int
		addrs     int
		leastTTL  uint32
		finalName string
	}{
		"plain":      {[]dns.RR{rr("a.test. 60 IN A 192.0.2.1"), rr("a.test. 60 IN AAAA 2001:db8::1")}, 1, 2, 60, "a.test."},
		"mixed case": {[]dns.RR{rr("A.Test. 60 IN A 192.0.2.1")}, 1, 1, 60, "a.test."},
		"chain":      {[]dns.RR{rr("a.test. 30 IN CNAME b.test."), rr("b.test. 300 IN CNAME c.test."), rr("c.test. 100 IN A 192.0.2.1")}, 3, 1, 30, "c.test."},
		"loop":       {[]dns.RR{rr("a.test. 30 IN CNAME b.test."), rr("b.test. 30 IN CNAME a.test.")}, 2, 0, 0, "b.test."},
		"unrelated":  {[]dns.RR{rr("x.test. 60 IN A 192.0.2.9")}, 1, 0, 0, "a.test."},
	}
	for name, c := range cases {
		chain, addrs := walk("a.test.", c.answer)
		if len(chain) != c.chain || len(addrs) != c.addrs || chain[len(chain)-1].name != c.finalName {
			t.Errorf("%s: chain %+v addrs %+v", name, chain, addrs)
			continue
		}
		for _, a := range addrs {
			if a.ttl != c.leastTTL {
				t.Errorf("%s: ttl %d, want %d", name, a.ttl, c.leastTTL)
			}
		}
	}
}

// Answers, plan changes and status reads run concurrently (go test -race).
func TestConcurrentAnswersAndPlanChanges(t *testing.T) {
	zone := map[string][]string{}
	for i := range 50 {
		name := fmt.Sprintf("n%d.example.com.", i)
		zone[name] = []string{fmt.Sprintf("%s 300 IN A 192.0.2.%d", name, i)}
	}
	up := upstream(t, zone)
	rec := &recorder{}
	p := newTestProxy(t, rec, nil, func(c *Config) { c.Upstreams = []netip.AddrPort{up} })
	fw := model.ParseFirewall(model.FirewallSpec{})
	a := policies(t, fw, model.EgressRule{ToFQDNs: []model.FQDNSelector{{MatchPattern: "*.example.com"}}})
	b := policies(t, fw, model.EgressRule{ToFQDNs: []model.FQDNSelector{{MatchPattern: "n1*.example.com"}}})
	// A plan is in force before the first answer, so that answers racing ahead of every plan
	// change still have something to learn for.
	p.Synced(context.Background(), runner.SyncResult{Applied: true, Firewall: fw, Policies: a})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { query(t, p, fmt.Sprintf("n%d.example.com.", i), dns.TypeA) })
	}
	for i := range 20 {
		wg.Go(func() {
			ps := a
			if i%2 == 1 {
				ps = b
			}
			p.Synced(context.Background(), runner.SyncResult{Applied: true, Firewall: fw, Policies: ps})
			_ = p.PolicyStates()
		})
	}
	wg.Wait()
	p.Synced(context.Background(), runner.SyncResult{Applied: true, Firewall: fw, Policies: a})
	if n, _ := p.cache.size(); n == 0 {
		t.Error("nothing learned")
	}
}
