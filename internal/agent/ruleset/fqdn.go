package ruleset

import (
	"fmt"

	"github.com/palisade-fw/palisade/internal/agent/model"
)

// Objects of the FQDN rules. They exist only while some policy has a toFQDNs rule.
const (
	ChainFQDNEgress  = "fqdn_egress"  // addresses the DNS proxy learned -> policy chain
	ChainDNSRedirect = "dns_redirect" // nat hook prerouting: cluster DNS -> the agent's proxy
)

// FQDNTarget is one toFQDNs rule as the DNS proxy sees it: the names it selects and the
// timeout sets (one per family) that receive their addresses.
type FQDNTarget struct {
	Policy model.ObjectKey
	Rule   model.FQDNRule
	SetV4  string
	SetV6  string
}

// Set returns the set for addresses of addr's family.
func (t FQDNTarget) Set(v4 bool) string {
	if v4 {
		return t.SetV4
	}
	return t.SetV6
}

// FQDNTargets lists the toFQDNs rules of policies with the names of their sets, in policy
// order.
func FQDNTargets(policies []model.Policy) []FQDNTarget {
	var out []FQDNTarget
	for _, p := range policies {
		for _, r := range p.FQDN {
			out = append(out, FQDNTarget{Policy: p.Key, Rule: r, SetV4: fqdnSetName(p.Key, r.Index, families[0]), SetV6: fqdnSetName(p.Key, r.Index, families[1])})
		}
	}
	return out
}

// fqdnSetName is "fqdn-<hash8>-<readable>-<rule index>_v4": per policy, rule and family,
// because each rule has its own ports.
func fqdnSetName(key model.ObjectKey, rule int, f family) string {
	return fmt.Sprintf("%s-%d%s", objectName("fqdn", key), rule, f.suffix)
}

// fqdnPart renders the FQDN rules of the policies: a timeout set per rule and family whose
// elements only the DNS proxy writes (the renderer lists none, so no apply ever removes a
// learned address) and the chain matching them. chain is nil while no policy has a toFQDNs
// rule.
func fqdnPart(policies []model.Policy, policyChains []string) (chain *Chain, sets []Set) {
	index := make(map[model.ObjectKey]string, len(policies))
	for i, p := range policies {
		index[p.Key] = policyChains[i]
	}
	targets := FQDNTargets(policies)
	if len(targets) == 0 {
		return nil, nil
	}
	// toFQDNs: addresses learned by the DNS proxy, protocol, port -> policy chain.
	egress := Chain{Name: ChainFQDNEgress}
	for _, f := range families {
		for _, t := range targets {
			set := t.Set(f.v4)
			sets = append(sets, Set{Name: set, Comment: comment("toFQDNs of " + t.Policy.String()), Type: f.addrType, Timeout: true})
			head := fmt.Sprintf("%s saddr @%s%s %s daddr @%s", f.ip, SetCluster, f.suffix, f.ip, set)
			if len(t.Rule.Ports) == 0 { // no ports: every protocol and port
				egress.Rules = append(egress.Rules, fmt.Sprintf("%s goto %s", head, index[t.Policy]))
			}
			for _, pr := range t.Rule.Ports {
				match := "meta l4proto " + pr.Protocol.String()
				if pr.First != 0 || pr.Last != 65535 {
					match += " th dport " + formatPorts(pr.First, pr.Last)
				}
				egress.Rules = append(egress.Rules, fmt.Sprintf("%s %s goto %s", head, match, index[t.Policy]))
			}
		}
	}
	return &egress, sets
}

// addFQDN puts the FQDN objects into r: the chain and sets, a jump to the chain before the
// forward chain's final drop, and, with a proxy port, the DNAT of the cluster's DNS traffic
// to the agent's DNS proxy.
func addFQDN(r *Ruleset, opts Options, chain *Chain, sets []Set) {
	if chain == nil {
		return
	}
	fwd := &r.Chains[0]
	last := len(fwd.Rules) - 1
	fwd.Rules = append(fwd.Rules[:last:last], "jump "+ChainFQDNEgress, fwd.Rules[last])
	if opts.DNSProxyPort != 0 {
		// The DNS of the cluster to the agent's DNS proxy.
		redirect := Chain{
			Name: ChainDNSRedirect,
			Base: &BaseChain{Type: "nat", Hook: "prerouting", Priority: "dstnat", Policy: "accept"},
		}
		// One rule per protocol rather than an anonymous set: the kernel path compiles
		// exactly the rule shapes the renderer emits (nft/compile.go).
		for _, f := range families {
			for _, proto := range []string{"udp", "tcp"} {
				redirect.Rules = append(redirect.Rules, fmt.Sprintf("%s saddr @%s%s meta l4proto %s th dport 53 counter redirect to :%d",
					f.ip, SetCluster, f.suffix, proto, opts.DNSProxyPort))
			}
		}
		r.Chains = append(r.Chains, redirect)
	}
	r.Chains = append(r.Chains, *chain)
	r.Sets = append(r.Sets, sets...)
}
