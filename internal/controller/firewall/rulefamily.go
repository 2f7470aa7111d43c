package firewall

import (
	"net/netip"

	"github.com/palisade-fw/palisade/internal/metal"
)

// splitByFamily returns rules in which every rule names CIDRs of one address family only:
// metal-api refuses a rule that mixes IPv4 and IPv6 ("mixed address families in one rule"),
// while the CRD, like the CAPMS template, allows 0.0.0.0/0 and ::/0 in one rule. A mixed rule
// becomes an IPv4 rule followed by an IPv6 rule with the same comment, protocol and ports.
//
// An ingress rule's optional destinations restrict its sources: a family that has sources but
// no destination while other destinations are given is dropped, because an empty "to" would
// allow every destination of that family.
func splitByFamily(in *metal.FirewallRules) *metal.FirewallRules {
	if in == nil {
		return nil
	}
	out := &metal.FirewallRules{}
	for _, r := range in.Egress {
		if len(r.To) == 0 {
			out.Egress = append(out.Egress, r) // refused by the CRD; metal-api says why
			continue
		}
		for _, to := range byFamily(r.To) {
			if len(to) == 0 {
				continue
			}
			rule := r
			rule.To = to
			out.Egress = append(out.Egress, rule)
		}
	}
	for _, r := range in.Ingress {
		from, to := byFamily(r.From), byFamily(r.To)
		for i, sources := range from {
			if len(sources) == 0 {
				continue
			}
			if len(r.To) > 0 && len(to[i]) == 0 {
				continue
			}
			rule := r
			rule.From, rule.To = sources, to[i]
			out.Ingress = append(out.Ingress, rule)
		}
	}
	return out
}

// byFamily splits cidrs into the IPv4 (index 0) and the IPv6 (index 1) ones, keeping their
// order. Unparsable entries stay with IPv4 so that metal-api reports them as it would.
func byFamily(cidrs []string) [2][]string {
	var groups [2][]string
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is6() {
			groups[1] = append(groups[1], c)
			continue
		}
		groups[0] = append(groups[0], c)
	}
	return groups
}
