package ruleset

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/palisade-fw/palisade/internal/agent/model"
)

// DefaultTable is the agent's table in the inet family.
const DefaultTable = "firewall"

// Chain names. The table is private to the agent, so names need no prefix.
const (
	ChainForward     = "forward"     // filter hook forward: the policy, default drop
	ChainPostrouting = "postrouting" // nat hook postrouting: SNAT per network
	ChainAccounting  = "accounting"  // counts traffic into and out of the cluster
	ChainRateLimit   = "ratelimit"   // polices traffic per network
)

// Set and map names; every one exists once per address family (suffix _v4, _v6). The
// CWNP maps with ports exist as MapShards shards each (ShardName, shard.go).
const (
	SetCluster     = "cluster"          // prefixes of the cluster behind the firewall
	SetInternal    = "internal"         // prefixes counted as internal traffic
	SetIngressDest = "ingress_dst"      // cluster prefixes and load-balancer IPs: where ingress may go
	MapEgress      = "cwnp_egress"      // daddr . proto . dport -> policy chain
	MapIngress     = "cwnp_ingress"     // saddr . proto . dport -> policy chain
	MapEgressAll   = "cwnp_egress_all"  // daddr -> policy chain, for rules without ports
	MapIngressAll  = "cwnp_ingress_all" // saddr -> policy chain, for rules without ports
	MapServices    = "services"         // lb ip . proto . port . saddr -> service chain
	MapNodePorts   = "nodeports"        // proto . node port . saddr -> service chain
)

// Named counters outside the object chains.
const (
	CounterEstablished = "accept_established"
	CounterInvalid     = "drop_invalid"
	CounterDropped     = "drop_total"
	CounterRateLimit   = "drop_ratelimit"
)

// accountingCounters are the traffic counters the FirewallMonitor reports.
var accountingCounters = []string{"internal_in", "external_in", "internal_out", "external_out"}

// Log prefixes the droptailer looks for.
const (
	logPrefixDropped  = "nftables-firewall-dropped: "
	logPrefixAccepted = "nftables-firewall-accepted: "
)

type family struct {
	v4       bool
	suffix   string // set name suffix
	ip       string // payload keyword: ip or ip6
	addrType string // nftables set type
}

var families = []family{
	{v4: true, suffix: "_v4", ip: "ip", addrType: "ipv4_addr"},
	{v4: false, suffix: "_v6", ip: "ip6", addrType: "ipv6_addr"},
}

func (f family) has(a netip.Addr) bool { return a.Is4() == f.v4 }

// Options tune rendering.
type Options struct {
	Table string
	// DNSProxyPort is where the agent's DNS proxy listens; while a policy has a toFQDNs
	// rule, the cluster's DNS traffic is redirected there. 0 renders no redirect.
	DNSProxyPort uint16
}

// Render builds the ruleset for a snapshot. Objects are expected to be valid (see
// model.Compose); everything user-provided enters as typed values or sanitized names.
func Render(snap model.Snapshot, opts Options) *Ruleset {
	policies, services := sortedPolicies(snap.Policies), sortedServices(snap.Services)
	var pol, svc objectPart
	var wg sync.WaitGroup
	wg.Go(func() { pol = renderPolicies(policies, snap.Firewall.LogAccepted, nil) })
	svc = renderServices(services, snap.Firewall.LogAccepted)
	wg.Wait()
	return assemble(opts, snap.Firewall, services, pol, svc)
}

func sortedPolicies(in []model.Policy) []model.Policy {
	out := slices.Clone(in)
	model.SortByKey(out, func(p model.Policy) model.ObjectKey { return p.Key })
	return out
}

func sortedServices(in []model.Service) []model.Service {
	out := slices.Clone(in)
	model.SortByKey(out, func(s model.Service) model.ObjectKey { return s.Key })
	return out
}

// objectPart is what the policies (or the services) contribute: one chain and counter per
// object and two maps per address family (egress and ingress, or services and node ports).
type objectPart struct {
	chains   []Chain
	counters []Counter
	maps     [2][2]Set // [family][which]
	// shards are the policies' maps with ports (egress, ingress), each split into
	// MapShards kernel maps (see shardMap); services use maps instead.
	shards [2][2][]Set
	// allMaps are the policies' maps for rules without ports (every protocol and port).
	allMaps [2][2]Set
	// fqdnChain and fqdnSets are the toFQDNs rules (policies only; see fqdn.go).
	fqdnChain *Chain
	fqdnSets  []Set
}

// renderPolicies renders the policy part; with caches (a Renderer's) it reuses what the
// last render resolved (incremental.go), without, it resolves everything.
func renderPolicies(policies []model.Policy, logAccepted bool, caches *policyCaches) objectPart {
	var part objectPart
	names := make([]string, len(policies))
	if caches != nil {
		caches.prepare(policies)
	}
	for i, p := range policies {
		what := "ClusterwideNetworkPolicy " + p.Key.String()
		if p.Comment != "" {
			what = p.Comment
		}
		var chain Chain
		if caches != nil {
			names[i], chain = caches.object(p.Key, what, logAccepted)
		} else {
			names[i] = objectName("cwnp", p.Key)
			chain = objectChain(names[i], what, logAccepted)
		}
		part.chains = append(part.chains, chain)
		part.counters = append(part.counters, Counter{Name: names[i]})
	}
	if caches != nil {
		caches.prune()
	}
	egress := func(p model.Policy) []model.Rule { return p.Egress }
	ingress := func(p model.Policy) []model.Rule { return p.Ingress }
	mapCaches := func(fi, dir int) []*rectCache {
		if caches == nil {
			return nil
		}
		return caches.maps[fi][dir]
	}
	// The maps are independent of each other; building them concurrently cuts the time of a
	// large ruleset on more than one core.
	var wg sync.WaitGroup
	for fi, f := range families {
		wg.Go(func() {
			part.shards[fi][0] = shardMap(policyMap(MapEgress+f.suffix, "CWNP egress: destination, protocol, port", f, policies, names, egress, caches, mapCaches(fi, 0)))
		})
		wg.Go(func() {
			part.shards[fi][1] = shardMap(policyMap(MapIngress+f.suffix, "CWNP ingress: source, protocol, port", f, policies, names, ingress, caches, mapCaches(fi, 1)))
		})
		wg.Go(func() {
			part.allMaps[fi][0] = allPortsMap(MapEgressAll+f.suffix, "CWNP egress without ports: destination", f, policies, names, egress)
			part.allMaps[fi][1] = allPortsMap(MapIngressAll+f.suffix, "CWNP ingress without ports: source", f, policies, names, ingress)
		})
	}
	wg.Wait()
	part.fqdnChain, part.fqdnSets = fqdnPart(policies, names)
	return part
}

func renderServices(services []model.Service, logAccepted bool) objectPart {
	var part objectPart
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = objectName("svc", s.Key)
		what := "Service " + s.Key.String()
		part.chains = append(part.chains, objectChain(names[i], what, logAccepted))
		part.counters = append(part.counters, Counter{Name: names[i]})
	}
	for fi, f := range families {
		part.maps[fi][0] = servicesMap(f, services, names)
		part.maps[fi][1] = nodePortsMap(f, services, names)
	}
	return part
}

// assemble puts the firewall-wide objects and the two parts together in the fixed order:
// base chains, policy chains, service chains; per family the address sets, the CWNP maps, the
// service maps; object counters, then the fixed ones.
func assemble(opts Options, fw model.Firewall, services []model.Service, pol, svc objectPart) *Ruleset {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	r := &Ruleset{Table: opts.Table}
	r.Chains = append(r.Chains, forwardChain(), postroutingChain(fw), accountingChain(), rateLimitChain(fw))
	for _, f := range families {
		r.Chains = append(r.Chains, shardChain(MapEgress+f.suffix, f.ip+" daddr"), shardChain(MapIngress+f.suffix, f.ip+" saddr"))
	}
	r.Chains = append(r.Chains, pol.chains...)
	r.Chains = append(r.Chains, svc.chains...)
	lb := lbIPs(services)
	for fi, f := range families {
		r.Sets = append(r.Sets,
			addressSet(SetCluster+f.suffix, "cluster prefixes", f, fw.ClusterPrefixes, nil),
			addressSet(SetInternal+f.suffix, "internal prefixes", f, fw.InternalPrefixes, nil),
			addressSet(SetIngressDest+f.suffix, "cluster prefixes and load-balancer IPs", f, fw.ClusterPrefixes, lb),
		)
		r.Sets = append(r.Sets, pol.shards[fi][0]...)
		r.Sets = append(r.Sets, pol.shards[fi][1]...)
		r.Sets = append(r.Sets, pol.allMaps[fi][0], pol.allMaps[fi][1], svc.maps[fi][0], svc.maps[fi][1])
	}
	r.Counters = append(r.Counters, pol.counters...)
	r.Counters = append(r.Counters, svc.counters...)
	for _, name := range []string{CounterEstablished, CounterInvalid, CounterDropped, CounterRateLimit} {
		r.Counters = append(r.Counters, Counter{Name: name})
	}
	for _, name := range accountingCounters {
		r.Counters = append(r.Counters, Counter{Name: name})
	}
	for _, s := range fw.SNAT {
		r.Counters = append(r.Counters, Counter{Name: snatCounter(s)})
	}
	addFQDN(r, opts, pol.fqdnChain, pol.fqdnSets)
	return r
}

func forwardChain() Chain {
	c := Chain{
		Name: ChainForward,
		Base: &BaseChain{Type: "filter", Hook: "forward", Priority: "filter + 1", Policy: "drop"},
		Rules: []string{
			"jump " + ChainAccounting,
			"jump " + ChainRateLimit,
			"ct state established,related counter name " + CounterEstablished + " accept",
			"ct state invalid counter name " + CounterInvalid + " drop",
		},
	}
	// Egress starts in the cluster. Ingress (policies, services, node ports) goes to the
	// cluster side and never starts in the cluster: an ingress rule cannot open egress.
	for _, f := range families {
		cluster, notCluster := fmt.Sprintf("%s saddr @%s%s", f.ip, SetCluster, f.suffix), fmt.Sprintf("%s saddr != @%s%s", f.ip, SetCluster, f.suffix)
		// The shards of a CWNP map are looked up in a chain of their own (shardChain),
		// entered once per packet.
		c.Rules = append(c.Rules,
			fmt.Sprintf("%s jump %s", cluster, shardChainName(MapEgress+f.suffix)),
			fmt.Sprintf("%s %s daddr vmap @%s%s", cluster, f.ip, MapEgressAll, f.suffix),
			fmt.Sprintf("%s daddr @%s%s %s jump %s", f.ip, SetIngressDest, f.suffix, notCluster, shardChainName(MapIngress+f.suffix)),
			fmt.Sprintf("%s daddr @%s%s %s %s saddr vmap @%s%s", f.ip, SetIngressDest, f.suffix, notCluster, f.ip, MapIngressAll, f.suffix),
			fmt.Sprintf("%s %s daddr . meta l4proto . th dport . %s saddr vmap @%s%s", notCluster, f.ip, f.ip, MapServices, f.suffix),
			fmt.Sprintf("%s daddr @%s%s %s meta l4proto . th dport . %s saddr vmap @%s%s", f.ip, SetCluster, f.suffix, notCluster, f.ip, MapNodePorts, f.suffix),
		)
	}
	// limit before log: the limit throttles the log, the counter still sees every drop.
	c.Rules = append(c.Rules, fmt.Sprintf("counter name %s limit rate 10/second %s", CounterDropped, logStatement(logPrefixDropped)))
	return c
}

func accountingChain() Chain {
	c := Chain{Name: ChainAccounting}
	for _, f := range families {
		cluster, internal := "@"+SetCluster+f.suffix, "@"+SetInternal+f.suffix
		c.Rules = append(c.Rules,
			fmt.Sprintf("%s daddr %s %s saddr %s counter name internal_in", f.ip, cluster, f.ip, internal),
			fmt.Sprintf("%s daddr %s %s saddr != %s counter name external_in", f.ip, cluster, f.ip, internal),
			fmt.Sprintf("%s saddr %s %s daddr %s counter name internal_out", f.ip, cluster, f.ip, internal),
			fmt.Sprintf("%s saddr %s %s daddr != %s counter name external_out", f.ip, cluster, f.ip, internal),
		)
	}
	return c
}

func rateLimitChain(fw model.Firewall) Chain {
	c := Chain{Name: ChainRateLimit}
	for _, rl := range fw.RateLimits {
		c.Rules = append(c.Rules, fmt.Sprintf("iifname %q limit rate over %d mbytes/second counter name %s drop",
			identifierSafe(rl.Interface), rl.MiBps, CounterRateLimit))
	}
	return c
}

func postroutingChain(fw model.Firewall) Chain {
	c := Chain{
		Name: ChainPostrouting,
		Base: &BaseChain{Type: "nat", Hook: "postrouting", Priority: "srcnat - 1", Policy: "accept"},
	}
	for _, s := range fw.SNAT {
		for _, f := range families {
			var ips []string
			for _, ip := range s.IPs {
				if f.has(ip) {
					ips = append(ips, ip.String())
				}
			}
			if len(ips) == 0 {
				continue
			}
			if len(ips) == 1 {
				c.Rules = append(c.Rules, fmt.Sprintf("oifname %q %s saddr @%s%s counter name %s snat %s to %s",
					identifierSafe(s.Interface), f.ip, SetCluster, f.suffix, snatCounter(s), f.ip, ips[0]))
				continue
			}
			// A stable choice per destination keeps a flow's source IP from changing: one
			// rule per address, picked by a hash of the destination.
			for i, ip := range ips {
				c.Rules = append(c.Rules, fmt.Sprintf("oifname %q %s saddr @%s%s jhash %s daddr mod %d == %d counter name %s snat %s to %s",
					identifierSafe(s.Interface), f.ip, SetCluster, f.suffix, f.ip, len(ips), i, snatCounter(s), f.ip, ip))
			}
		}
	}
	return c
}

func snatCounter(s model.SNAT) string {
	return objectName("snat", model.ObjectKey{Source: "firewall", Name: s.NetworkID})
}

func objectChain(name, what string, logAccepted bool) Chain {
	// The object's description is the comment of its accept rule: rule comments are the
	// one place the kernel keeps text for every object kind (and nft lists it).
	c := Chain{Name: name}
	if logAccepted {
		c.Rules = append(c.Rules, "limit rate 10/second "+logStatement(logPrefixAccepted))
	}
	c.Rules = append(c.Rules, fmt.Sprintf("counter name %s accept comment %q", name, comment(what)))
	return c
}

func lbIPs(services []model.Service) []netip.Addr {
	var ips []netip.Addr
	for _, s := range services {
		if s.Type == model.LoadBalancer {
			ips = append(ips, s.IPs...)
		}
	}
	return ips
}

func addressSet(name, what string, f family, prefixes []netip.Prefix, addrs []netip.Addr) Set {
	var spans []owned
	for _, p := range prefixes {
		if f.has(p.Addr()) {
			spans = append(spans, owned{span: spanOf(p)})
		}
	}
	for _, a := range addrs {
		if f.has(a) {
			spans = append(spans, owned{span: spanOf(netip.PrefixFrom(a, a.BitLen()))})
		}
	}
	s := Set{Name: name, Comment: what, Type: f.addrType, Interval: true}
	for _, o := range resolve(spans) {
		s.Elements = append(s.Elements, Element{Key: []string{o.format(f.v4)}})
	}
	return s
}

// policyMap renders a CWNP map; with caches (one per protocol) only the components the
// last render did not hold are resolved.
func policyMap(name, what string, f family, policies []model.Policy, chains []string, rules func(model.Policy) []model.Rule, pc *policyCaches, caches []*rectCache) Set {
	m := Set{Name: name, Comment: what, Type: f.addrType + " . inet_proto . inet_service : verdict", Map: true, Interval: true}
	byProto := map[model.Protocol][]portEntry{}
	for owner, p := range policies {
		for _, rule := range rules(p) {
			var spans []owned
			for _, peer := range rule.Peers {
				if !f.has(peer.Prefix.Addr()) {
					continue
				}
				for _, s := range subtract(peer.Prefix, peer.Except) {
					spans = append(spans, owned{span: s, owner: owner})
				}
			}
			if len(spans) == 0 {
				continue
			}
			for _, pr := range rule.Ports {
				byProto[pr.Protocol] = append(byProto[pr.Protocol], portEntry{first: pr.First, last: pr.Last, spans: spans})
			}
		}
	}
	// Protocols resolve independently (and concurrently); elements stay in protocol order.
	perProto := make([][]Element, len(model.Protocols))
	var wg sync.WaitGroup
	for i, proto := range model.Protocols {
		wg.Go(func() {
			if caches != nil {
				perProto[i] = caches[i].elements(byProto[proto], pc.rank, pc.pos, f, proto, chains)
				return
			}
			rects := resolveRects(byProto[proto])
			elems := make([]Element, 0, len(rects))
			for _, r := range rects {
				elems = append(elems, Element{Key: []string{r.format(f.v4), proto.String(), formatPorts(r.first, r.last)}, Value: "goto " + chains[r.owner]})
			}
			perProto[i] = elems
		})
	}
	wg.Wait()
	for _, elems := range perProto {
		m.Elements = append(m.Elements, elems...)
	}
	return m
}

// allPortsMap maps the peers of rules without ports to their policy; where peers of
// several policies overlap, the first policy by name owns the overlap.
func allPortsMap(name, what string, f family, policies []model.Policy, chains []string, rules func(model.Policy) []model.Rule) Set {
	m := Set{Name: name, Comment: what, Type: f.addrType + " : verdict", Map: true, Interval: true}
	var spans []owned
	for owner, p := range policies {
		for _, rule := range rules(p) {
			if !rule.AllPorts() {
				continue
			}
			for _, peer := range rule.Peers {
				if f.has(peer.Prefix.Addr()) {
					for _, s := range subtract(peer.Prefix, peer.Except) {
						spans = append(spans, owned{span: s, owner: owner})
					}
				}
			}
		}
	}
	for _, o := range resolve(spans) {
		m.Elements = append(m.Elements, Element{Key: []string{o.format(f.v4)}, Value: "goto " + chains[o.owner]})
	}
	return m
}

type lbKey struct {
	ip    netip.Addr
	proto model.Protocol
	port  uint16
}

func servicesMap(f family, services []model.Service, chains []string) Set {
	m := Set{Name: MapServices + f.suffix, Comment: "load-balancer IP, protocol, port, source -> service",
		Type: f.addrType + " . inet_proto . inet_service . " + f.addrType + " : verdict", Map: true, Interval: true}
	groups := map[lbKey][]owned{}
	for owner, s := range services {
		if s.Type != model.LoadBalancer {
			continue
		}
		sources := sourceSpans(f, s, owner)
		for _, ip := range s.IPs {
			if !f.has(ip) {
				continue
			}
			for _, p := range s.Ports {
				k := lbKey{ip: ip, proto: p.Protocol, port: p.Port}
				groups[k] = append(groups[k], sources...)
			}
		}
	}
	keys := sortedKeys(groups)
	for _, k := range keys {
		for _, o := range resolve(groups[k]) {
			m.Elements = append(m.Elements, Element{
				Key:   []string{k.ip.String(), k.proto.String(), fmt.Sprint(k.port), o.format(f.v4)},
				Value: "goto " + chains[o.owner],
			})
		}
	}
	return m
}

func nodePortsMap(f family, services []model.Service, chains []string) Set {
	m := Set{Name: MapNodePorts + f.suffix, Comment: "protocol, node port, source -> service",
		Type: "inet_proto . inet_service . " + f.addrType + " : verdict", Map: true, Interval: true}
	groups := map[lbKey][]owned{}
	for owner, s := range services {
		if s.Type != model.NodePort {
			continue
		}
		sources := sourceSpans(f, s, owner)
		for _, p := range s.Ports {
			k := lbKey{proto: p.Protocol, port: p.NodePort}
			groups[k] = append(groups[k], sources...)
		}
	}
	for _, k := range sortedKeys(groups) {
		for _, o := range resolve(groups[k]) {
			m.Elements = append(m.Elements, Element{
				Key:   []string{k.proto.String(), fmt.Sprint(k.port), o.format(f.v4)},
				Value: "goto " + chains[o.owner],
			})
		}
	}
	return m
}

func sourceSpans(f family, s model.Service, owner int) []owned {
	var out []owned
	for _, p := range s.EffectiveSources() {
		if f.has(p.Addr()) {
			out = append(out, owned{span: spanOf(p), owner: owner})
		}
	}
	return out
}

func sortedKeys(m map[lbKey][]owned) []lbKey {
	keys := make([]lbKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b lbKey) int {
		if c := a.ip.Compare(b.ip); c != 0 {
			return c
		}
		if a.proto != b.proto {
			return int(a.proto) - int(b.proto)
		}
		return int(a.port) - int(b.port)
	})
	return keys
}

func formatPorts(first, last uint16) string {
	if first == last {
		return fmt.Sprint(first)
	}
	return fmt.Sprintf("%d-%d", first, last)
}
