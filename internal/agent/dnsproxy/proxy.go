// Package dnsproxy is the agent's DNS proxy for the cluster behind the firewall. It forwards
// every query to the upstream resolvers and, before an answer goes back to the client, writes
// the A and AAAA addresses of names selected by toFQDNs rules into those rules' nftables
// timeout sets, so the connection that follows the answer is already allowed. Elements expire
// with the answer's TTL (clamped to a floor and a ceiling); the learned state is bounded,
// persisted and reported per policy.
package dnsproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
	"github.com/palisade-fw/palisade/internal/agent/runner"
)

// Defaults of Config.
const (
	DefaultPort          = 53
	DefaultMinTTL        = 30 * time.Second
	DefaultMaxTTL        = time.Hour
	DefaultMaxNames      = 10000
	DefaultMaxAddresses  = 50000
	DefaultStateInterval = 10 * time.Second
	DefaultTimeout       = 5 * time.Second
	// maxChain bounds the CNAME hops followed for one answer.
	maxChain = 10
)

// Config configures a Proxy.
type Config struct {
	// Port is where the proxy listens (UDP and TCP, every address of the namespace); the
	// ruleset redirects the cluster's DNS there.
	Port uint16
	// ListenAddr overrides where the proxy listens ("host:port"; tests and benchmarks).
	ListenAddr string
	// Upstreams are used when the Firewall spec names no dnsServerAddress (the partition's
	// resolvers, or the firewall's own /etc/resolv.conf).
	Upstreams []netip.AddrPort
	// MinTTL and MaxTTL clamp the timeout of a learned address.
	MinTTL, MaxTTL time.Duration
	// MaxNames and MaxAddresses cap the learned state.
	MaxNames, MaxAddresses int
	// StateFile keeps the learned state across restarts ("" keeps nothing); it is written at
	// most every StateInterval.
	StateFile     string
	StateInterval time.Duration
	// Timeout bounds one upstream exchange.
	Timeout time.Duration
	Sets    SetUpdater
	Metrics *Metrics
	Log     *slog.Logger
	// Now is the clock (tests); nil uses time.Now.
	Now func() time.Time
}

// plan is what the applied ruleset asks of the proxy.
type plan struct {
	targets  []ruleset.FQDNTarget
	allowed  *model.Allowed
	upstream []netip.AddrPort
}

// Proxy answers DNS queries and learns addresses. It is a runner.SyncObserver: it follows
// the toFQDNs rules of the ruleset once that is applied.
type Proxy struct {
	cfg   Config
	cache *cache
	// ready is closed when the servers listen on addr.
	ready chan struct{}
	addr  string

	mu      sync.RWMutex
	plan    plan
	planned bool
}

var _ runner.SyncObserver = (*Proxy)(nil)

// New returns a proxy with defaults applied and the saved state loaded.
func New(cfg Config) (*Proxy, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.MinTTL == 0 {
		cfg.MinTTL = DefaultMinTTL
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = DefaultMaxTTL
	}
	if cfg.MaxTTL < cfg.MinTTL {
		return nil, fmt.Errorf("maxTTL %s is below minTTL %s", cfg.MaxTTL, cfg.MinTTL)
	}
	if cfg.MaxNames == 0 {
		cfg.MaxNames = DefaultMaxNames
	}
	if cfg.MaxAddresses == 0 {
		cfg.MaxAddresses = DefaultMaxAddresses
	}
	if cfg.StateInterval == 0 {
		cfg.StateInterval = DefaultStateInterval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sets == nil {
		return nil, errors.New("no SetUpdater")
	}
	p := &Proxy{cfg: cfg, cache: newCache(cfg.MaxNames, cfg.MaxAddresses), ready: make(chan struct{})}
	if cfg.StateFile != "" {
		if err := p.cache.load(cfg.StateFile, cfg.Now()); err != nil {
			// A broken file must not keep DNS down; the names are learned again.
			cfg.Log.Warn("DNS state not loaded; starting empty", "err", err)
		}
	}
	p.updateGauges()
	return p, nil
}

// Ready is closed once the proxy listens.
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

// Addr is where the proxy listens; valid after Ready.
func (p *Proxy) Addr() string { return p.addr }

// Run serves until ctx ends, then saves the state.
func (p *Proxy) Run(ctx context.Context) error {
	addr := net.JoinHostPort("::", strconv.Itoa(int(p.cfg.Port)))
	if p.cfg.ListenAddr != "" {
		addr = p.cfg.ListenAddr
	}
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("dns proxy: %w", err)
	}
	if p.cfg.ListenAddr != "" {
		addr = udp.LocalAddr().String() // a port 0 was picked: TCP takes the same
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		udp.Close()
		return fmt.Errorf("dns proxy: %w", err)
	}
	servers := []*dns.Server{
		{PacketConn: udp, Handler: p.handler("udp")},
		{Listener: tcp, Handler: p.handler("tcp")},
	}
	errs := make(chan error, len(servers))
	var started sync.WaitGroup
	for _, s := range servers {
		started.Add(1)
		s.NotifyStartedFunc = started.Done
		go func() { errs <- s.ActivateAndServe() }()
	}
	started.Wait()
	p.addr = udp.LocalAddr().String()
	close(p.ready)
	p.cfg.Log.Info("DNS proxy listening", "addr", addr)

	tick := time.NewTicker(p.cfg.StateInterval)
	defer tick.Stop()
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errs:
			runErr = fmt.Errorf("dns proxy: %w", err)
			break loop
		case <-tick.C:
			p.cache.sweep(p.cfg.Now())
			p.updateGauges()
			p.save()
		}
	}
	for _, s := range servers {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.ShutdownContext(shutdownCtx)
		cancel()
	}
	p.save()
	return runErr
}

func (p *Proxy) save() {
	if p.cfg.StateFile == "" {
		return
	}
	if err := p.cache.save(p.cfg.StateFile, p.cfg.Now()); err != nil {
		p.cfg.Log.Error("saving DNS state", "err", err)
	}
}

func (p *Proxy) updateGauges() {
	names, addrs := p.cache.size()
	p.cfg.Metrics.cacheNames.Set(float64(names))
	p.cfg.Metrics.cacheAddresses.Set(float64(addrs))
}

// Synced follows the applied ruleset: its toFQDNs rules, allowedNetworks and the Firewall's
// resolver. When the rules change, every learned address a rule selects is written into its
// sets at once (a new policy for a known name, and the state loaded after a restart, work
// without waiting for the next query).
func (p *Proxy) Synced(ctx context.Context, res runner.SyncResult) {
	if !res.Applied {
		return // the kernel keeps the previous ruleset, and so does the proxy
	}
	next := plan{targets: ruleset.FQDNTargets(res.Policies), allowed: res.Firewall.Allowed}
	if res.Firewall.DNSUpstream.IsValid() {
		next.upstream = []netip.AddrPort{res.Firewall.DNSUpstream}
	}
	p.mu.Lock()
	changed := !p.planned || !samePlan(p.plan, next)
	p.plan, p.planned = next, true
	p.mu.Unlock()
	if changed {
		p.restore(ctx, next)
	}
}

func samePlan(a, b plan) bool {
	if len(a.targets) != len(b.targets) || fmt.Sprint(a.allowed) != fmt.Sprint(b.allowed) {
		return false
	}
	for i := range a.targets {
		x, y := a.targets[i], b.targets[i]
		if x.SetV4 != y.SetV4 || len(x.Rule.Selectors) != len(y.Rule.Selectors) {
			return false
		}
		for j := range x.Rule.Selectors {
			if x.Rule.Selectors[j].Selector != y.Rule.Selectors[j].Selector {
				return false
			}
		}
	}
	return true
}

// restore writes the learned addresses into the sets of pl.
func (p *Proxy) restore(ctx context.Context, pl plan) {
	now := p.cfg.Now()
	elems := map[elemKey]time.Time{}
	p.cache.each(now, func(name string, addrs map[netip.Addr]time.Time) {
		for _, t := range pl.targets {
			if !t.Rule.Matches(name) {
				continue
			}
			for a, exp := range addrs {
				if pl.allowed.AllowsEgress(a) {
					k := elemKey{set: t.Set(a.Is4()), addr: a}
					elems[k] = later(elems[k], exp)
				}
			}
		}
	})
	if err := p.write(ctx, elems, now); err != nil {
		p.cfg.Log.Error("restoring learned addresses into the sets", "err", err)
	}
}

type elemKey struct {
	set  string
	addr netip.Addr
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (p *Proxy) write(ctx context.Context, elems map[elemKey]time.Time, now time.Time) error {
	if len(elems) == 0 {
		return nil
	}
	list := make([]Element, 0, len(elems))
	for k, exp := range elems {
		list = append(list, Element{Set: k.set, Addr: k.addr, Timeout: exp.Sub(now)})
	}
	start := time.Now()
	err := p.cfg.Sets.Add(ctx, list)
	p.cfg.Metrics.updateLatency.Observe(time.Since(start).Seconds())
	result := "ok"
	if err != nil {
		result = "error"
	}
	p.cfg.Metrics.setUpdates.WithLabelValues(result).Inc()
	return err
}

func (p *Proxy) currentPlan() plan {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.plan
}

func (p *Proxy) upstreams(pl plan) []netip.AddrPort {
	if len(pl.upstream) > 0 {
		return pl.upstream
	}
	return p.cfg.Upstreams
}

func (p *Proxy) handler(transport string) dns.Handler {
	// UDPSize only sizes the read buffer: the upstream answers within what the client's
	// query allows (and sets TC beyond it), so no datagram is ever cut here.
	client := &dns.Client{Net: transport, Timeout: p.cfg.Timeout, UDPSize: dns.MaxMsgSize}
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*p.cfg.Timeout)
		defer cancel()
		resp := p.answer(ctx, client, req)
		// The client gets at most what it can take: 512 bytes over plain UDP, its EDNS
		// buffer size, 64 KiB over TCP. Truncate also compresses (a re-packed message
		// loses the upstream's compression) and sets TC when records had to go.
		size := dns.MaxMsgSize
		if transport == "udp" {
			size = dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = max(int(opt.UDPSize()), dns.MinMsgSize)
			}
		}
		resp.Truncate(size)
		p.cfg.Metrics.answers.WithLabelValues(transport, dns.RcodeToString[resp.Rcode]).Inc()
		_ = w.WriteMsg(resp)
	})
}

// answer forwards req and learns from the answer before returning it.
func (p *Proxy) answer(ctx context.Context, client *dns.Client, req *dns.Msg) *dns.Msg {
	pl := p.currentPlan()
	resp, err := p.exchange(ctx, client, pl, req)
	if err != nil {
		p.cfg.Metrics.upstreamErrors.Inc()
		p.cfg.Log.Debug("no upstream answered", "err", err)
		return new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	}
	if len(pl.targets) == 0 || resp.Rcode != dns.RcodeSuccess || len(req.Question) != 1 {
		return resp
	}
	if err := p.learn(ctx, client, pl, req.Question[0], resp); err != nil {
		// The client would get an address the firewall drops; SERVFAIL makes it retry.
		p.cfg.Log.Error("writing learned addresses into the sets", "name", req.Question[0].Name, "err", err)
		return new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	}
	return resp
}

func (p *Proxy) exchange(ctx context.Context, client *dns.Client, pl plan, req *dns.Msg) (*dns.Msg, error) {
	ups := p.upstreams(pl)
	if len(ups) == 0 {
		return nil, errors.New("no upstream resolver configured")
	}
	var errs []error
	for _, up := range ups {
		resp, _, err := client.ExchangeContext(ctx, req, up.String())
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", up, err))
	}
	return nil, errors.Join(errs...)
}

// learn writes the addresses of the answer into the sets of every rule selecting a name of
// its CNAME chain. A chain the answer leaves unfinished is resolved on (at most maxChain
// hops) before the answer is released.
func (p *Proxy) learn(ctx context.Context, client *dns.Client, pl plan, q dns.Question, resp *dns.Msg) error {
	chain, addrs := walk(q.Name, resp.Answer)
	if !anyMatch(pl.targets, chain) {
		return nil
	}
	p.cfg.Metrics.matched.Inc()
	for hops := len(chain); len(addrs) == 0 && hops < maxChain && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA) && len(chain) > 1; hops = len(chain) {
		sub := new(dns.Msg)
		sub.SetQuestion(chain[len(chain)-1].name, q.Qtype)
		sub.RecursionDesired = true
		r, err := p.exchange(ctx, client, pl, sub)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			break
		}
		more, moreAddrs := walk(sub.Question[0].Name, r.Answer)
		ttl := chain[len(chain)-1].ttl
		for _, c := range more[1:] {
			chain = append(chain, link{name: c.name, ttl: min(c.ttl, ttl)})
		}
		for i := range moreAddrs {
			moreAddrs[i].ttl = min(moreAddrs[i].ttl, ttl)
		}
		addrs = moreAddrs
		if len(more) == 1 {
			break
		}
	}

	now := p.cfg.Now()
	elems := map[elemKey]time.Time{}
	for _, a := range addrs {
		if !pl.allowed.AllowsEgress(a.addr) {
			p.cfg.Metrics.refused.WithLabelValues("allowed_networks").Inc()
			continue
		}
		expires := now.Add(p.clamp(a.ttl))
		for _, c := range chain {
			var selecting []ruleset.FQDNTarget
			for _, t := range pl.targets {
				if t.Rule.Matches(c.name) {
					selecting = append(selecting, t)
				}
			}
			if len(selecting) == 0 {
				continue
			}
			exp, ok := p.cache.learn(c.name, a.addr, expires, now)
			if !ok {
				p.cfg.Metrics.refused.WithLabelValues("cache_full").Inc()
				continue
			}
			for _, t := range selecting {
				k := elemKey{set: t.Set(a.addr.Is4()), addr: a.addr}
				elems[k] = later(elems[k], exp)
			}
		}
	}
	p.updateGauges()
	return p.write(ctx, elems, now)
}

func (p *Proxy) clamp(ttl uint32) time.Duration {
	d := time.Duration(ttl) * time.Second
	return min(max(d, p.cfg.MinTTL), p.cfg.MaxTTL)
}

// link is one name of a CNAME chain and the least TTL on the way to it.
type link struct {
	name string
	ttl  uint32
}

type learned struct {
	addr netip.Addr
	ttl  uint32
}

// walk follows the CNAME chain from qname through the answer section and returns the chain
// (qname first, canonical names) and the A/AAAA records of its last name, each with the
// least TTL along the way.
func walk(qname string, answer []dns.RR) ([]link, []learned) {
	chain := []link{{name: model.CanonicalName(qname), ttl: ^uint32(0)}}
	seen := map[string]bool{chain[0].name: true}
	for len(chain) <= maxChain {
		cur := chain[len(chain)-1]
		next := ""
		var ttl uint32
		for _, rr := range answer {
			if c, ok := rr.(*dns.CNAME); ok && model.CanonicalName(c.Hdr.Name) == cur.name {
				next, ttl = model.CanonicalName(c.Target), c.Hdr.Ttl
				break
			}
		}
		if next == "" || seen[next] {
			break
		}
		seen[next] = true
		chain = append(chain, link{name: next, ttl: min(cur.ttl, ttl)})
	}
	last := chain[len(chain)-1]
	var addrs []learned
	for _, rr := range answer {
		var ip net.IP
		switch r := rr.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		default:
			continue
		}
		if model.CanonicalName(rr.Header().Name) != last.name {
			continue
		}
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		addrs = append(addrs, learned{addr: a.Unmap(), ttl: min(rr.Header().Ttl, last.ttl)})
	}
	return chain, addrs
}

func anyMatch(targets []ruleset.FQDNTarget, chain []link) bool {
	for _, c := range chain {
		for _, t := range targets {
			if t.Rule.Matches(c.name) {
				return true
			}
		}
	}
	return false
}
