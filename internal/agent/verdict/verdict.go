// Package verdict answers "what does this packet meet?" over the agent's policy model: given
// the composed snapshot the agent renders into nftables, it tells whether the first packet of
// a flow is accepted and by which rule, in the order the forward chain looks (see
// ruleset.forwardChain): from a cluster address the egress rules with ports, the egress rules
// without ports, then the toFQDNs rules; from elsewhere, towards the cluster prefixes or a
// load-balancer IP, the ingress rules with ports, without ports, then the services and node
// ports. Where several objects allow the same packet, the one first by name owns it, as the
// renderer gives the overlap to the lowest owner (its counter counts the packet).
//
// It is pure: `kubectl palisade explain` calls it with objects read from the cluster, and the
// netns test checks it against what the kernel does with the rendered ruleset.
package verdict

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Direction is how the firewall classifies a flow: by whether its source is in the cluster.
type Direction string

const (
	Egress  Direction = "egress"
	Ingress Direction = "ingress"
)

// Flow is the first packet of a connection through the firewall.
type Flow struct {
	// Src is the source; the zero Addr means "any address of the cluster" (egress).
	Src      netip.Addr
	Dst      netip.Addr
	Protocol model.Protocol
	Port     uint16
}

func (f Flow) String() string {
	src := "the cluster"
	if f.Src.IsValid() {
		src = f.Src.String()
	}
	return fmt.Sprintf("%s -> %s %s", src, netip.AddrPortFrom(f.Dst, f.Port), f.Protocol)
}

// ParseProtoPort reads "443/tcp", "53/UDP" or "443" (TCP).
func ParseProtoPort(s string) (model.Protocol, uint16, error) {
	portStr, protoStr, _ := strings.Cut(s, "/")
	proto, err := model.ParseProtocol(protoStr)
	if err != nil {
		return 0, 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return 0, 0, fmt.Errorf("%q is not a port between 1 and 65535", portStr)
	}
	return proto, uint16(port), nil
}

// Learned are the addresses the DNS proxy learned per policy and toFQDNs selector (matchName
// or matchPattern as written), as the agent publishes them in the CWNP's status.fqdn_state.
type Learned map[model.ObjectKey]map[string][]netip.Addr

// Rule names one rule of one object and says what it allows.
type Rule struct {
	Kind string `json:"kind"` // ClusterwideNetworkPolicy or Service
	// Object is how the plugin prints the object: cwnp/NAME, service/NS/NAME, default-egress.
	Object    string `json:"object"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Rule is the rule's place in the object: egress[0], ingress[1], port 443/tcp.
	Rule string `json:"rule"`
	// Allows says what the rule opens, e.g. "443/tcp to 140.82.0.0/16".
	Allows string `json:"allows"`
	// Counter is the nftables counter (and chain) that counts what the rule accepts.
	Counter string `json:"counter"`
}

func (r Rule) String() string {
	return r.Object + " " + r.Rule
}

// Near is a rule that almost matches a dropped flow: only Misses (address, port or source)
// keeps it from matching.
type Near struct {
	Rule   `json:",inline"`
	Misses string `json:"misses"`
}

// Result is the verdict on one flow.
type Result struct {
	Flow      string    `json:"flow"`
	Direction Direction `json:"direction"`
	Allowed   bool      `json:"allowed"`
	// By is the rule that accepts the flow (nil when dropped).
	By *Rule `json:"by,omitempty"`
	// Reason says why a flow is dropped.
	Reason string `json:"reason,omitempty"`
	// Nearest are the rules closest to allowing a dropped flow, closest first.
	Nearest []Near `json:"nearest,omitempty"`
	// Notes give context: how the direction follows from the addresses, allowedNetworks,
	// objects the agent refused that would allow the flow.
	Notes []string `json:"notes,omitempty"`
}

// maxNearest bounds the list of near misses.
const maxNearest = 3

// Evaluate decides the flow over a composed snapshot, as the kernel decides it with the
// snapshot's rendered ruleset.
func Evaluate(snap model.Snapshot, learned Learned, f Flow) Result {
	fw := snap.Firewall
	res := Result{Flow: f.String()}
	if !f.Src.IsValid() || containsAddr(fw.ClusterPrefixes, f.Src) {
		res.Direction = Egress
		if f.Src.IsValid() {
			res.Notes = append(res.Notes, fmt.Sprintf("egress: the source %s is in the cluster prefix %s", f.Src, prefixOf(fw.ClusterPrefixes, f.Src)))
		} else if !slices.ContainsFunc(fw.ClusterPrefixes, func(p netip.Prefix) bool { return p.Addr().Is4() == f.Dst.Is4() }) {
			res.Reason = "the cluster has no prefix of this address family, so no such flow starts in it"
			return res
		}
		if (f.Protocol == model.TCP || f.Protocol == model.UDP) && f.Port == 53 && hasFQDNRules(snap.Policies) {
			// ruleset.addFQDN: with the DNS proxy running, the cluster's DNS is redirected to
			// it before the forward chain sees it.
			res.Notes = append(res.Notes, "while a policy has toFQDNs rules, the agent's DNS proxy (when enabled) receives the cluster's DNS on the firewall itself; "+
				"the verdict below is what the forward chain decides for DNS that is not redirected")
		}
		evaluateEgress(snap, learned, f, &res)
		return res
	}
	res.Direction = Ingress
	res.Notes = append(res.Notes, fmt.Sprintf("ingress: the source %s is in no cluster prefix (%s)", f.Src, describe(fw.ClusterPrefixes)))
	evaluateIngress(snap, f, &res)
	return res
}

func evaluateEgress(snap model.Snapshot, learned Learned, f Flow, res *Result) {
	policies := sortedPolicies(snap.Policies)
	var near []scored
	// The egress map (rules with ports), then the map of rules without ports: the first
	// policy by name whose rule matches owns the packet.
	for _, allPorts := range []bool{false, true} {
		for _, p := range policies {
			for _, r := range p.Egress {
				if r.AllPorts() != allPorts {
					continue
				}
				addr, port := peersMatch(r.Peers, f.Dst), portsMatch(r.Ports, f)
				if addr && port {
					res.Allowed, res.By = true, ref(p, r.Index, "egress", r)
					addCapNote(snap.Firewall, p, fmt.Sprintf("egress[%d]", r.Index), res)
					return
				}
				near = append(near, nearRule(ref(p, r.Index, "egress", r), addr, port, r.Peers, f))
			}
		}
	}
	for _, p := range policies {
		for _, r := range p.FQDN {
			rr := fqdnRef(p, r)
			port := r.Ports == nil || portsMatch(r.Ports, f)
			addr := learnedFor(learned, p.Key, r, f.Dst)
			if port && addr && snap.Firewall.Allowed.AllowsEgress(f.Dst) {
				res.Allowed, res.By = true, rr
				return
			}
			if port {
				n := Near{Rule: *rr, Misses: fmt.Sprintf("address: %s was not learned for these names", f.Dst)}
				if addr {
					n.Misses = "address: outside allowedNetworks.egress"
				}
				near = append(near, scored{near: n, score: 1})
			}
		}
	}
	res.Reason = "no rule matches"
	res.Nearest = nearest(near)
}

func evaluateIngress(snap model.Snapshot, f Flow, res *Result) {
	fw := snap.Firewall
	policies := sortedPolicies(snap.Policies)
	services := sortedServices(snap.Services)
	var near []scored
	toCluster := containsAddr(fw.ClusterPrefixes, f.Dst)
	toLB := false
	for _, s := range services {
		if s.Type == model.LoadBalancer && slices.Contains(s.IPs, f.Dst) {
			toLB = true
		}
	}
	if toCluster || toLB {
		for _, allPorts := range []bool{false, true} {
			for _, p := range policies {
				for _, r := range p.Ingress {
					if r.AllPorts() != allPorts {
						continue
					}
					addr, port := peersMatch(r.Peers, f.Src), portsMatch(r.Ports, f)
					if addr && port {
						res.Allowed, res.By = true, ref(p, r.Index, "ingress", r)
						addCapNote(fw, p, fmt.Sprintf("ingress[%d]", r.Index), res)
						return
					}
					near = append(near, nearRule(ref(p, r.Index, "ingress", r), addr, port, r.Peers, f))
				}
			}
		}
	} else {
		res.Notes = append(res.Notes, fmt.Sprintf("ingress rules open only the cluster prefixes and load-balancer IPs; %s is neither", f.Dst))
	}
	// Services: the load-balancer IP and port, from one of the source ranges.
	for _, s := range services {
		if s.Type != model.LoadBalancer || !slices.Contains(s.IPs, f.Dst) {
			continue
		}
		for _, p := range s.Ports {
			rr := serviceRef(s, fmt.Sprintf("port %d/%s", p.Port, p.Protocol), fmt.Sprintf("%d/%s to %s from %s", p.Port, p.Protocol, f.Dst, describe(s.EffectiveSources())))
			port := p.Protocol == f.Protocol && p.Port == f.Port
			src := containsAddr(s.EffectiveSources(), f.Src)
			if port && src {
				res.Allowed, res.By = true, rr
				return
			}
			near = append(near, serviceNear(rr, port, src, s))
		}
	}
	// Node ports: any cluster address, the node port, from one of the source ranges.
	if toCluster {
		for _, s := range services {
			if s.Type != model.NodePort {
				continue
			}
			for _, p := range s.Ports {
				rr := serviceRef(s, fmt.Sprintf("node port %d/%s", p.NodePort, p.Protocol), fmt.Sprintf("%d/%s to the cluster prefixes from %s", p.NodePort, p.Protocol, describe(s.EffectiveSources())))
				port := p.Protocol == f.Protocol && p.NodePort == f.Port
				src := containsAddr(s.EffectiveSources(), f.Src)
				if port && src {
					res.Allowed, res.By = true, rr
					return
				}
				if port {
					near = append(near, serviceNear(rr, port, src, s))
				}
			}
		}
	}
	res.Reason = "no rule matches"
	res.Nearest = nearest(near)
}

// scored is a near miss with how close it is: higher is closer.
type scored struct {
	near  Near
	score int
}

// nearRule scores a rule that misses the flow on one side by how specifically it agrees on
// the other: a rule for exactly this address on another port is nearer than the default
// egress (every address) on another port; a rule for the port towards a neighbouring
// network is nearer than one towards a distant one.
func nearRule(r *Rule, addr, port bool, peers []model.Peer, f Flow) scored {
	peer := f.Dst
	if f.Src.IsValid() && strings.HasPrefix(r.Rule, "ingress") {
		peer = f.Src
	}
	switch {
	case addr && !port:
		return scored{near: Near{Rule: *r, Misses: fmt.Sprintf("port: not %d/%s", f.Port, f.Protocol)}, score: 100 + scaled(matchingBits(peers, peer), peer)}
	case port && !addr:
		return scored{near: Near{Rule: *r, Misses: "address: " + peer.String() + " is outside"}, score: 100 + scaled(commonBits(peers, peer), peer)}
	}
	return scored{near: Near{Rule: *r, Misses: "address and port"}, score: scaled(commonBits(peers, peer), peer) / 2}
}

// scaled maps prefix bits of either family onto 0..32.
func scaled(bits int, a netip.Addr) int {
	if a.Is4() {
		return bits
	}
	return bits / 4
}

// matchingBits is the length of the most specific peer that holds addr.
func matchingBits(peers []model.Peer, addr netip.Addr) int {
	best := 0
	for _, p := range peers {
		if p.Prefix.Contains(addr) {
			best = max(best, p.Prefix.Bits())
		}
	}
	return best
}

func serviceNear(r *Rule, port, src bool, s model.Service) scored {
	switch {
	case port && !src:
		return scored{near: Near{Rule: *r, Misses: "source: outside " + describe(s.EffectiveSources())}, score: 250}
	case src && !port:
		return scored{near: Near{Rule: *r, Misses: "port"}, score: 220}
	}
	return scored{near: Near{Rule: *r, Misses: "port and source"}, score: 150}
}

func nearest(in []scored) []Near {
	slices.SortStableFunc(in, func(a, b scored) int { return b.score - a.score })
	var out []Near
	for _, s := range in {
		if len(out) == maxNearest {
			break
		}
		out = append(out, s.near)
	}
	return out
}

// commonBits is the longest common prefix of addr with a peer of its family.
func commonBits(peers []model.Peer, addr netip.Addr) int {
	best := 0
	for _, p := range peers {
		a := p.Prefix.Addr()
		if a.Is4() != addr.Is4() {
			continue
		}
		x, y := a.AsSlice(), addr.AsSlice()
		n := 0
		for i := range x {
			d := x[i] ^ y[i]
			if d == 0 {
				n += 8
				continue
			}
			for d&0x80 == 0 {
				n++
				d <<= 1
			}
			break
		}
		n = min(n, p.Prefix.Bits())
		best = max(best, n)
	}
	return best
}

func hasFQDNRules(policies []model.Policy) bool {
	return slices.ContainsFunc(policies, func(p model.Policy) bool { return len(p.FQDN) > 0 })
}

func peersMatch(peers []model.Peer, a netip.Addr) bool {
	for _, p := range peers {
		if p.Prefix.Contains(a) && !slices.ContainsFunc(p.Except, func(e netip.Prefix) bool { return e.Contains(a) }) {
			return true
		}
	}
	return false
}

func portsMatch(ports []model.PortRange, f Flow) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol == f.Protocol && p.First <= f.Port && f.Port <= p.Last {
			return true
		}
	}
	return false
}

func learnedFor(learned Learned, key model.ObjectKey, r model.FQDNRule, a netip.Addr) bool {
	for _, s := range r.Selectors {
		if slices.Contains(learned[key][s.Selector], a) {
			return true
		}
	}
	return false
}

// addCapNote explains how allowedNetworks shaped the accepting rule: a rule without peers
// opens only the allowed networks (model's capPolicy notes it under the rule's place in the
// manifest, which is rule).
func addCapNote(fw model.Firewall, p model.Policy, rule string, res *Result) {
	if fw.Allowed == nil {
		return
	}
	for _, n := range p.Notes {
		if strings.HasPrefix(n, rule+":") && strings.Contains(n, "allowedNetworks") {
			res.Notes = append(res.Notes, fmt.Sprintf("allowedNetworks: %s lists no peers, so it opens %s", res.By, strings.TrimPrefix(n, rule+": ")))
		}
	}
}

func ref(p model.Policy, index int, dir string, r model.Rule) *Rule {
	word := "to"
	if dir == "ingress" {
		word = "from"
	}
	return &Rule{
		Kind: model.KindPolicy, Object: policyObject(p.Key), Namespace: p.Key.Namespace, Name: p.Key.Name,
		Rule:    fmt.Sprintf("%s[%d]", dir, index),
		Allows:  describePorts(r.Ports) + " " + word + " " + describePeers(r.Peers),
		Counter: ruleset.PolicyCounter(p.Key),
	}
}

func fqdnRef(p model.Policy, r model.FQDNRule) *Rule {
	var names []string
	for _, s := range r.Selectors {
		names = append(names, s.Selector)
	}
	return &Rule{
		Kind: model.KindPolicy, Object: policyObject(p.Key), Namespace: p.Key.Namespace, Name: p.Key.Name,
		Rule:    fmt.Sprintf("egress[%d]", r.Index),
		Allows:  describePorts(r.Ports) + " to the addresses learned for " + strings.Join(names, ", "),
		Counter: ruleset.PolicyCounter(p.Key),
	}
}

func serviceRef(s model.Service, rule, allows string) *Rule {
	return &Rule{Kind: model.KindService, Object: "service/" + s.Key.Namespace + "/" + s.Key.Name, Namespace: s.Key.Namespace, Name: s.Key.Name,
		Rule: rule, Allows: allows, Counter: ruleset.ServiceCounter(s.Key)}
}

func policyObject(k model.ObjectKey) string {
	if k == model.DefaultEgressKey {
		return "default-egress"
	}
	return "cwnp/" + k.Name
}

func describePorts(ports []model.PortRange) string {
	if len(ports) == 0 {
		return "every protocol and port"
	}
	var parts []string
	for _, p := range ports {
		switch {
		case p.First == 0 && p.Last == 65535:
			parts = append(parts, "every "+p.Protocol.String()+" port")
		case p.First == p.Last:
			parts = append(parts, fmt.Sprintf("%d/%s", p.First, p.Protocol))
		default:
			parts = append(parts, fmt.Sprintf("%d-%d/%s", p.First, p.Last, p.Protocol))
		}
	}
	return strings.Join(parts, ", ")
}

func describePeers(peers []model.Peer) string {
	if len(peers) == 0 {
		return "nothing"
	}
	var parts []string
	for _, p := range peers {
		s := p.Prefix.String()
		if len(p.Except) > 0 {
			var ex []string
			for _, e := range p.Except {
				ex = append(ex, e.String())
			}
			s += " except " + strings.Join(ex, ", ")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func describe(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none"
	}
	var parts []string
	for _, p := range ps {
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ", ")
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

func prefixOf(ps []netip.Prefix, a netip.Addr) netip.Prefix {
	for _, p := range ps {
		if p.Contains(a) {
			return p
		}
	}
	return netip.Prefix{}
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

// Summary is the verdict in one line: "allowed by cwnp/allow-github egress[0] (443/tcp to
// 140.82.0.0/16)" or "dropped: no rule matches; nearest: cwnp/allow-https egress[0] allows
// 443/tcp to 140.82.0.0/24 only".
func (r Result) Summary() string {
	if r.Allowed {
		return fmt.Sprintf("allowed by %s (%s)", r.By, r.By.Allows)
	}
	s := "dropped: " + r.Reason
	if len(r.Nearest) > 0 {
		n := r.Nearest[0]
		s += fmt.Sprintf("; nearest: %s allows %s only", n.Rule, n.Allows)
	}
	return s
}
