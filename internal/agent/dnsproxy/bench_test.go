package dnsproxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
	"github.com/palisade-fw/palisade/internal/agent/runner"
)

// timedSets measures every kernel write: the time an answer is held.
type timedSets struct {
	inner SetUpdater
	mu    sync.Mutex
	took  []time.Duration
}

func (s *timedSets) Add(ctx context.Context, elems []Element) error {
	start := time.Now()
	err := s.inner.Add(ctx, elems)
	s.mu.Lock()
	s.took = append(s.took, time.Since(start))
	s.mu.Unlock()
	return err
}

// scratchTable creates a network namespace holding the agent's table with the timeout sets
// of targets and returns its name.
func scratchTable(tb testing.TB, targets []ruleset.FQDNTarget) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("the DNS proxy benchmark writes nftables sets and needs root (CI runs as root)")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "palbench" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add: %v %s", err, out)
	}
	tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	var rules strings.Builder
	rules.WriteString("table inet firewall {\n")
	for _, t := range targets {
		fmt.Fprintf(&rules, "set %s { type ipv4_addr; flags timeout; }\nset %s { type ipv6_addr; flags timeout; }\n", t.SetV4, t.SetV6)
	}
	rules.WriteString("}\n")
	cmd := exec.Command("ip", "netns", "exec", name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("nft: %v %s", err, out)
	}
	return name
}

// scratchNetlink is the agent's kernel path into the namespace.
func scratchNetlink(tb testing.TB, ns string) *nft.Netlink {
	tb.Helper()
	nl, err := nft.NewNetlink("firewall", "/var/run/netns/"+ns)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = nl.Close() })
	return nl
}

// BenchmarkProxiedAnswer measures what the proxy adds to an answer: a query straight to the
// resolver, through the proxy for a name no rule selects, and through the proxy for a fresh
// selected name (every answer writes its address into the kernel set before it is
// released). It reports p50/p99 of the round trip and of the kernel write.
//
//	go test -run '^$' -bench BenchmarkProxiedAnswer -benchtime 2000x ./internal/agent/dnsproxy
func BenchmarkProxiedAnswer(b *testing.B) {
	var served atomic.Uint32
	up := upstreamFunc(b, func(q dns.Question) []dns.RR {
		n := served.Add(1)
		rr, _ := dns.NewRR(fmt.Sprintf("%s 300 IN A 10.%d.%d.%d", q.Name, n>>16&0xff, n>>8&0xff, n&0xff))
		return []dns.RR{rr}
	})
	port := int32(443)
	policies, _ := model.ComposePolicies(model.Firewall{}, []model.PolicyInput{{Key: model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: "bench"},
		Spec: model.PolicySpec{Egress: []model.EgressRule{{Ports: []model.PolicyPort{{Port: &port}}, ToFQDNs: []model.FQDNSelector{{MatchPattern: "*.selected.test"}}}}}}})
	targets := ruleset.FQDNTargets(policies)
	ns := scratchTable(b, targets)
	sets := &timedSets{inner: &NftSets{Kernel: scratchNetlink(b, ns)}}
	p, err := New(Config{ListenAddr: "127.0.0.1:0", Upstreams: []netip.AddrPort{up}, Sets: sets, MaxNames: 1 << 20, MaxAddresses: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Run(ctx) }()
	<-p.Ready()
	p.Synced(ctx, runner.SyncResult{Applied: true, Policies: policies})

	client := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	for _, c := range []struct {
		name   string
		server string
		qname  func(i int) string
	}{
		{"direct", up.String(), func(i int) string { return fmt.Sprintf("d%d.other.test.", i) }},
		{"proxied-unselected", p.Addr(), func(i int) string { return fmt.Sprintf("u%d.other.test.", i) }},
		{"proxied-selected", p.Addr(), func(i int) string { return fmt.Sprintf("s%d.selected.test.", i) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			sets.mu.Lock()
			sets.took = nil
			sets.mu.Unlock()
			rtts := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				m := new(dns.Msg).SetQuestion(c.qname(i), dns.TypeA)
				start := time.Now()
				r, _, err := client.Exchange(m, c.server)
				if err != nil || r.Rcode != dns.RcodeSuccess {
					b.Fatalf("query: %v %v", err, r)
				}
				rtts = append(rtts, time.Since(start))
			}
			report(b, "rtt", rtts)
			sets.mu.Lock()
			took := slices.Clone(sets.took)
			sets.mu.Unlock()
			if len(took) > 0 {
				report(b, "kernel", took)
			}
		})
	}
}

func report(b *testing.B, what string, ds []time.Duration) {
	slices.Sort(ds)
	at := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) }
	b.ReportMetric(at(0.5), what+"-p50-µs")
	b.ReportMetric(at(0.99), what+"-p99-µs")
}

func upstreamFunc(tb testing.TB, answer func(dns.Question) []dns.RR) netip.AddrPort {
	tb.Helper()
	return upstreamHandler(tb, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		m.Answer = answer(req.Question[0])
		_ = w.WriteMsg(m)
	}))
}
