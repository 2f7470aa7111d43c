package netns

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The DNS tests run the agent as a daemon in the firewall namespace with its DNS proxy. A
// resolver written with miekg/dns answers in the outside namespace ("the internet") on
// 10.99.0.53 / fd99::53; the node resolves through the firewall (its DNS is redirected to the
// proxy) and connects at once to the TCP listeners of the outside namespace.

const (
	resolver4 = "10.99.0.53"
	resolver6 = "fd99::53"
	// waitLong bounds every poll; the machine is shared, so it is generous.
	waitLong = 60 * time.Second
)

// zone is the test resolver's mutable content.
type zone struct {
	mu      sync.Mutex
	records map[string][]string // canonical name -> RR text
}

func (z *zone) set(name string, rrs ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.records[dns.CanonicalName(name)] = rrs
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg).SetReply(req)
	q := req.Question[0]
	z.mu.Lock()
	rrs := z.records[dns.CanonicalName(q.Name)]
	z.mu.Unlock()
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			continue
		}
		if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
			m.Answer = append(m.Answer, rr)
		}
	}
	// Like a real resolver: over UDP at most 512 bytes or the EDNS buffer size, else TC.
	size := dns.MaxMsgSize
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size = dns.MinMsgSize
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
		size = max(size, int(opt.UDPSize()))
	}
	m.Truncate(size)
	_ = w.WriteMsg(m)
}

// serveZone starts the resolver in ns on UDP and TCP of every address.
func (l *Lab) serveZone(ns string, addrs ...string) *zone {
	l.t.Helper()
	z := &zone{records: map[string][]string{}}
	for _, a := range addrs {
		hostport := net.JoinHostPort(a, "53")
		err := Do(ns, func() error {
			pc, err := net.ListenPacket("udp", hostport)
			if err != nil {
				return err
			}
			lis, err := net.Listen("tcp", hostport)
			if err != nil {
				return err
			}
			for _, srv := range []*dns.Server{{PacketConn: pc, Handler: z}, {Listener: lis, Handler: z}} {
				go func() { _ = srv.ActivateAndServe() }()
				l.t.Cleanup(func() { _ = srv.Shutdown() })
			}
			return nil
		})
		if err != nil {
			l.t.Fatalf("resolver on %s: %v", hostport, err)
		}
	}
	return z
}

// resolve asks server from ns (through the firewall) and returns the answer.
func resolve(ns, server, transport, name string, qtype uint16, edns uint16) (*dns.Msg, error) {
	var resp *dns.Msg
	err := Do(ns, func() error {
		m := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
		if edns > 0 {
			m.SetEdns0(edns, false)
		}
		c := &dns.Client{Net: transport, Timeout: 3 * time.Second}
		var err error
		resp, _, err = c.Exchange(m, net.JoinHostPort(server, "53"))
		return err
	})
	return resp, err
}

// addresses resolves name and returns the A/AAAA addresses of the answer.
func (s *single) addresses(name string, qtype uint16) []string {
	s.t.Helper()
	server := resolver4
	if qtype == dns.TypeAAAA {
		server = resolver6
	}
	resp, err := resolve(s.node, server, "udp", name, qtype, 1232)
	if err != nil {
		s.t.Fatalf("resolving %s: %v", name, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		s.t.Fatalf("resolving %s: %s", name, dns.RcodeToString[resp.Rcode])
	}
	var out []string
	for _, rr := range resp.Answer {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
		case *dns.AAAA:
			out = append(out, r.AAAA.String())
		}
	}
	return out
}

// daemon is the agent running (not --once) in the firewall namespace.
type daemon struct {
	cmd *exec.Cmd
	log string
}

// startAgent writes config and runs the agent until stop or the end of the test.
func (a *Agent) startAgent(config string) *daemon {
	t := a.lab.t
	t.Helper()
	path := filepath.Join(a.Dir, "config.yaml")
	full := config + fmt.Sprintf("\nnftables:\n  ruleFile: %s\n", a.RuleFile()) + a.Nftables
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: filepath.Join(a.Dir, fmt.Sprintf("agent-%d.log", time.Now().UnixNano()))}
	out, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command("ip", "netns", "exec", a.NS, agentBin, "--config", path)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop()
		out.Close()
		if t.Failed() {
			data, _ := os.ReadFile(d.log)
			t.Logf("agent log:\n%s", data)
		}
	})
	return d
}

// stop ends the agent with SIGTERM and waits (it saves the DNS state on the way out).
func (d *daemon) stop() {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	_ = d.cmd.Wait()
}

// eventually polls fn until it returns nil or the deadline passes.
func eventually(t testing.TB, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: still %v after %s", what, err, waitLong)
}

// setElements lists the addresses in one of the agent's sets.
func (l *Lab) setElements(ns, set string) []string {
	l.t.Helper()
	out := l.In(ns, "nft", "-j", "list", "set", "inet", "firewall", set)
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		l.t.Fatalf("parsing set %s: %v", set, err)
	}
	var addrs []string
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, raw := range o.Set.Elem {
			var plain string
			if json.Unmarshal(raw, &plain) == nil {
				addrs = append(addrs, plain)
				continue
			}
			var withTimeout struct {
				Elem struct {
					Val string `json:"val"`
				} `json:"elem"`
			}
			if json.Unmarshal(raw, &withTimeout) == nil {
				addrs = append(addrs, withTimeout.Elem.Val)
			}
		}
	}
	return addrs
}

// fqdnSets returns the names of the agent's toFQDNs sets of one family.
func (l *Lab) fqdnSets(ns, suffix string) []string {
	l.t.Helper()
	var sets []string
	for _, line := range strings.Split(l.In(ns, "nft", "list", "sets", "inet"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "set" && strings.HasPrefix(f[1], "fqdn-") && strings.HasSuffix(f[1], suffix) {
			sets = append(sets, f[1])
		}
	}
	return sets
}

// newDNSLab is the single topology plus the resolver and a few more outside addresses.
func newDNSLab(t *testing.T) (*single, *zone) {
	s := newSingle(t)
	s.Addr(s.outside, "eth0", resolver4+"/24")
	s.Addr(s.outside, "eth0", resolver6+"/64")
	for i := 100; i < 140; i++ {
		s.Addr(s.outside, "eth0", fmt.Sprintf("10.99.0.%d/24", i))
	}
	for i := 0x100; i < 0x104; i++ {
		s.Addr(s.outside, "eth0", fmt.Sprintf("fd99::%x/64", i))
	}
	z := s.serveZone(s.outside, resolver4, resolver6)
	return s, z
}

func dnsConfig(dir, extra string) string {
	return fmt.Sprintf(`
name: fw-test
controllers:
  firewall: {source: static}
  cwnp: {source: static}
sources:
  static:
    firewall:
      internalPrefixes: [10.0.0.0/8, "fd00::/8"]
      clusterPrefixes: [10.1.0.0/24, "fd01::/64"]
      dnsServerAddress: %s
      allowedNetworks:
        egress: [10.99.0.0/24, "fd99::/64", 10.98.0.0/16]
    cwnp:
      egress:
      - toFQDNs: [{matchName: Allowed.Test}, {matchPattern: "*.pattern.test"}, {matchName: alias.test}, {matchName: split.test}, {matchName: far.test}]
        ports: [{protocol: TCP, port: 443}]
dns:
  minTTL: 1s
  maxTTL: 1h
  stateFile: %s
  stateInterval: 1s
%s`, resolver4, filepath.Join(dir, "dns-state.json"), extra)
}

// waitProxy waits until the ruleset is applied and the proxy answers through the redirect.
func (s *single) waitProxy(z *zone) {
	s.t.Helper()
	z.set("ready.test", "ready.test. 300 IN A 10.99.0.139")
	eventually(s.t, "proxy answering through the firewall", func() error {
		if len(s.fqdnSets(s.fw, "_v4")) == 0 {
			return fmt.Errorf("no toFQDNs sets yet")
		}
		_, err := resolve(s.node, resolver4, "udp", "ready.test", dns.TypeA, 0)
		return err
	})
}

func TestFQDNFirstConnectionPassesAndAddressesFollowDNS(t *testing.T) {
	s, z := newDNSLab(t)
	s.agent.startAgent(dnsConfig(s.agent.Dir, ""))
	s.waitProxy(z)

	// Fresh names, each with a new address: the connection right after the answer passes
	// without a single dropped packet (a SYN dropped for a race would be retransmitted and
	// could still pass, so the drop counter is what proves there was no race).
	drops := s.Counter(s.fw, "drop_total")
	for i := range 8 {
		name := fmt.Sprintf("app%d.pattern.test", i)
		addr := fmt.Sprintf("10.99.0.%d", 100+i)
		z.set(name, name+". 300 IN A "+addr)
		got := s.addresses(name, dns.TypeA)
		if len(got) != 1 || got[0] != addr {
			t.Fatalf("%s resolved to %v", name, got)
		}
		s.Expect(pass(s.node, "tcp", addr+":443"))
	}
	if after := s.Counter(s.fw, "drop_total"); after != drops {
		t.Errorf("%d packets dropped around first connections", after-drops)
	}

	// matchName ignores case and the trailing dot.
	z.set("allowed.test", "allowed.test. 300 IN A 10.99.0.110")
	s.addresses("ALLOWED.test.", dns.TypeA)
	s.Expect(pass(s.node, "tcp", "10.99.0.110:443"))

	// An unmatched name resolves, but its address stays closed; so does another port.
	z.set("unmatched.test", "unmatched.test. 300 IN A 10.99.0.111")
	if got := s.addresses("unmatched.test", dns.TypeA); len(got) != 1 {
		t.Fatalf("unmatched.test: %v", got)
	}
	s.Expect(
		drop(s.node, "tcp", "10.99.0.111:443"),
		drop(s.node, "tcp", "10.99.0.110:8080"),
	)

	// allowedNetworks caps what a name may open: 192.0.2.77 is outside it.
	z.set("capped.pattern.test", "capped.pattern.test. 300 IN A 10.98.1.1", "capped.pattern.test. 300 IN A 192.0.2.77")
	s.addresses("capped.pattern.test", dns.TypeA)
	set4 := s.fqdnSets(s.fw, "_v4")[0]
	if els := strings.Join(s.setElements(s.fw, set4), " "); strings.Contains(els, "192.0.2.77") || !strings.Contains(els, "10.98.1.1") {
		t.Errorf("set %s: %s", set4, els)
	}

	// A changed address is followed.
	z.set("moving.pattern.test", "moving.pattern.test. 300 IN A 10.99.0.112")
	s.addresses("moving.pattern.test", dns.TypeA)
	s.Expect(pass(s.node, "tcp", "10.99.0.112:443"), drop(s.node, "tcp", "10.99.0.113:443"))
	z.set("moving.pattern.test", "moving.pattern.test. 300 IN A 10.99.0.113")
	s.addresses("moving.pattern.test", dns.TypeA)
	// The new address is added; the old one is not overwritten (upstream #186) but stays
	// open until its own TTL ends, for clients that still hold it.
	s.Expect(pass(s.node, "tcp", "10.99.0.113:443"), pass(s.node, "tcp", "10.99.0.112:443"))

	// CNAME chains: answered in one go, and finished by the proxy when the answer stops at
	// the alias.
	z.set("alias.test", "alias.test. 300 IN CNAME edge.cdn.example.", "edge.cdn.example. 300 IN A 10.99.0.114")
	s.addresses("alias.test", dns.TypeA)
	s.Expect(pass(s.node, "tcp", "10.99.0.114:443"))
	z.set("split.test", "split.test. 300 IN CNAME far.cdn.example.")
	z.set("far.cdn.example", "far.cdn.example. 300 IN A 10.99.0.115")
	s.addresses("split.test", dns.TypeA)
	s.Expect(pass(s.node, "tcp", "10.99.0.115:443"))

	// IPv6: AAAA answers open the v6 set, asked over IPv6.
	z.set("v6.pattern.test", "v6.pattern.test. 300 IN AAAA fd99::100")
	if got := s.addresses("v6.pattern.test", dns.TypeAAAA); len(got) != 1 || got[0] != "fd99::100" {
		t.Fatalf("v6.pattern.test: %v", got)
	}
	s.Expect(pass(s.node, "tcp", "[fd99::100]:443"), drop(s.node, "tcp", "[fd99::101]:443"))

	// An expired TTL closes the address again, without any query.
	z.set("short.pattern.test", "short.pattern.test. 1 IN A 10.99.0.116")
	s.addresses("short.pattern.test", dns.TypeA)
	eventually(t, "10.99.0.116 closed after its TTL", func() error {
		for _, e := range s.setElements(s.fw, set4) {
			if e == "10.99.0.116" {
				return fmt.Errorf("still in %s", set4)
			}
		}
		return nil
	})
	s.Expect(drop(s.node, "tcp", "10.99.0.116:443"), pass(s.node, "tcp", "10.99.0.113:443"))

	// TCP, EDNS and truncation: a large answer is cut for plain UDP (TC set), whole over
	// EDNS and TCP.
	var big []string
	for i := range 40 {
		big = append(big, fmt.Sprintf("big.pattern.test. 300 IN A 10.98.2.%d", i))
	}
	z.set("big.pattern.test", big...)
	for _, c := range []struct {
		transport string
		edns      uint16
		truncated bool
	}{{"udp", 0, true}, {"udp", 4096, false}, {"tcp", 0, false}} {
		resp, err := resolve(s.node, resolver4, c.transport, "big.pattern.test", dns.TypeA, c.edns)
		if err != nil {
			t.Fatalf("%s edns %d: %v", c.transport, c.edns, err)
		}
		if resp.Truncated != c.truncated || (!c.truncated && len(resp.Answer) != 40) {
			t.Errorf("%s edns %d: truncated %v with %d answers", c.transport, c.edns, resp.Truncated, len(resp.Answer))
		}
	}
}

func TestFQDNStateSurvivesRestart(t *testing.T) {
	s, z := newDNSLab(t)
	cfg := dnsConfig(s.agent.Dir, "")
	d := s.agent.startAgent(cfg)
	s.waitProxy(z)
	z.set("keep.pattern.test", "keep.pattern.test. 300 IN A 10.99.0.120")
	z.set("keep6.pattern.test", "keep6.pattern.test. 300 IN AAAA fd99::102")
	s.addresses("keep.pattern.test", dns.TypeA)
	s.addresses("keep6.pattern.test", dns.TypeAAAA)
	s.Expect(pass(s.node, "tcp", "10.99.0.120:443"), pass(s.node, "tcp", "[fd99::102]:443"))
	d.stop()

	// Lose the kernel's copy (as after a reboot, when the rule file loads empty sets).
	sets := append(s.fqdnSets(s.fw, "_v4"), s.fqdnSets(s.fw, "_v6")...)
	for _, set := range sets {
		s.In(s.fw, "nft", "flush", "set", "inet", "firewall", set)
	}
	s.Expect(drop(s.node, "tcp", "10.99.0.120:443"), drop(s.node, "tcp", "[fd99::102]:443"))
	if _, err := os.Stat(filepath.Join(s.agent.Dir, "dns-state.json")); err != nil {
		t.Fatalf("no state file: %v", err)
	}

	// The restarted agent puts the learned addresses back without any query.
	z.set("keep.pattern.test") // the resolver forgets the name: only the state can open it
	s.agent.startAgent(cfg)
	eventually(t, "learned addresses restored", func() error {
		if err := Connect(s.node, "", "tcp", "10.99.0.120:443"); err != nil {
			return err
		}
		return Connect(s.node, "", "tcp", "[fd99::102]:443")
	})
}

func TestFQDNFloodStaysWithinCap(t *testing.T) {
	s, z := newDNSLab(t)
	s.agent.startAgent(dnsConfig(s.agent.Dir, "  maxNames: 20\n  maxAddresses: 30\n"))
	s.waitProxy(z)
	for i := range 60 {
		name := fmt.Sprintf("flood%d.pattern.test", i)
		z.set(name, fmt.Sprintf("%s. 300 IN A 10.98.3.%d", name, i), fmt.Sprintf("%s. 300 IN A 10.98.4.%d", name, i))
		// The answers keep coming; only learning stops at the cap.
		if got := s.addresses(name, dns.TypeA); len(got) != 2 {
			t.Fatalf("%s: %v", name, got)
		}
	}
	total := 0
	for _, set := range s.fqdnSets(s.fw, "_v4") {
		total += len(s.setElements(s.fw, set))
	}
	if total > 30 || total < 20 {
		t.Errorf("%d addresses in the sets, want between 20 and the cap of 30", total)
	}
	// A name beyond the cap is not opened; the first ones are.
	z.set("late.pattern.test", "late.pattern.test. 300 IN A 10.99.0.130")
	s.addresses("late.pattern.test", dns.TypeA)
	s.Expect(drop(s.node, "tcp", "10.99.0.130:443"))

	var st struct {
		Names map[string]map[string]time.Time `json:"names"`
	}
	eventually(t, "state file within the cap", func() error {
		data, err := os.ReadFile(filepath.Join(s.agent.Dir, "dns-state.json"))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
		if len(st.Names) < 15 {
			return fmt.Errorf("%d names saved", len(st.Names))
		}
		return nil
	})
	addrs := 0
	for _, m := range st.Names {
		addrs += len(m)
	}
	if len(st.Names) > 20 || addrs > 30 {
		t.Errorf("state holds %d names, %d addresses; caps 20, 30", len(st.Names), addrs)
	}
}

// A proxy that cannot listen (port 53 taken on the firewall) leaves the rest of the ruleset
// in force, without redirecting the cluster's DNS to nowhere.
func TestFQDNProxyThatCannotListenKeepsRulesetWithoutRedirect(t *testing.T) {
	s, z := newDNSLab(t)
	err := Do(s.fw, func() error {
		pc, err := net.ListenPacket("udp", "[::]:53")
		if err != nil {
			return err
		}
		t.Cleanup(func() { pc.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := s.agent.startAgent(dnsConfig(s.agent.Dir, ""))
	eventually(t, "ruleset applied", func() error {
		if len(s.fqdnSets(s.fw, "_v4")) == 0 {
			return fmt.Errorf("no toFQDNs sets yet")
		}
		return nil
	})
	if log, _ := os.ReadFile(d.log); !strings.Contains(string(log), "DNS proxy not started") {
		t.Errorf("the agent does not say the proxy is missing:\n%s", log)
	}
	if out, err := s.TryIn(s.fw, "nft", "list", "chain", "inet", "firewall", "dns_redirect"); err == nil {
		t.Errorf("DNS redirected although no proxy listens:\n%s", out)
	}
	// The node's DNS goes through the forward chain as before (no policy allows it here).
	z.set("app.pattern.test", "app.pattern.test. 300 IN A 10.99.0.100")
	if _, err := resolve(s.node, resolver4, "udp", "app.pattern.test", dns.TypeA, 0); err == nil {
		t.Error("DNS passed although no policy allows it and no proxy answers")
	}
	s.Expect(drop(s.node, "tcp", "10.99.0.100:443"))
}
