package model

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// MaxRateMiBps is the largest rate limit the kernel accepts (about 147 Gbit/s): it keeps
// bytes per second times 10^9 (ns) in 64 bits and refuses larger rates ("Value too large").
const MaxRateMiBps = 17592

// DefaultRuleFile is where the ruleset is written unless configured otherwise.
const DefaultRuleFile = "/etc/nftables/firewall-controller.v4"

// ParseFirewall turns a Firewall spec into the firewall-wide configuration. The spec is owned
// by the operator, so a bad entry is skipped with a warning instead of blocking everything.
func ParseFirewall(spec FirewallSpec) Firewall {
	fw := Firewall{
		LogAccepted: spec.LogAcceptedConnections,
		DryRun:      spec.DryRun,
		RuleFile:    spec.Ipv4RuleFile,
	}
	warn := func(format string, args ...any) {
		fw.Warnings = append(fw.Warnings, fmt.Sprintf(format, args...))
	}
	prefixes := func(key string, values []string) []netip.Prefix {
		var out []netip.Prefix
		for i, v := range values {
			p, err := ParsePrefix(v)
			if err != nil {
				warn("%s[%d]: %v; skipped", key, i, err)
				continue
			}
			out = append(out, p)
		}
		return out
	}

	fw.InternalPrefixes = prefixes("internalPrefixes", spec.InternalPrefixes)
	fw.ClusterPrefixes = prefixes("clusterPrefixes", spec.ClusterPrefixes)
	networks := map[string]FirewallNetwork{}
	for i, n := range spec.FirewallNetworks {
		networks[n.NetworkID] = n
		if len(spec.ClusterPrefixes) == 0 && isPrivate(n.NetworkType) {
			fw.ClusterPrefixes = append(fw.ClusterPrefixes, prefixes(fmt.Sprintf("firewallNetworks[%d].prefixes", i), n.Prefixes)...)
		}
	}
	if len(fw.ClusterPrefixes) == 0 {
		fw.ClusterPrefixes = fw.InternalPrefixes
	}
	fw.ServicePrefixes = slices.Clone(fw.ClusterPrefixes)
	for i, n := range spec.FirewallNetworks {
		// Private networks (primary and DMZ) are the cluster side. External networks count
		// too: metal-stack allocates LoadBalancer IPs from the project's internet network,
		// and a service rule still matches only sources outside the cluster prefixes, so such
		// an IP opens ingress towards the cluster, never egress. The underlay (the switch
		// fabric) never holds service IPs.
		if t := strings.ToLower(n.NetworkType); !strings.HasPrefix(t, "private") && t != "external" {
			continue
		}
		for j, v := range n.Prefixes {
			p, err := ParsePrefix(v)
			switch {
			case err != nil && !isPrivate(n.NetworkType): // primary ones were warned about above
				warn("firewallNetworks[%d].prefixes[%d]: %v; skipped", i, j, err)
			case err == nil && !containsPrefix(fw.ServicePrefixes, p):
				fw.ServicePrefixes = append(fw.ServicePrefixes, p)
			}
		}
	}

	for i, rl := range spec.RateLimits {
		n, ok := networks[rl.NetworkID]
		switch {
		case !ok:
			warn("rateLimits[%d]: network %q is not attached to the firewall; skipped", i, printable(rl.NetworkID))
		case n.Vrf <= 0:
			warn("rateLimits[%d]: network %q has no VRF; skipped", i, printable(rl.NetworkID))
		case rl.Rate == 0:
			warn("rateLimits[%d]: rate must be positive; skipped", i)
		case rl.Rate > MaxRateMiBps:
			// The kernel refuses token buckets this large; one bad limit must not fail the
			// whole transaction.
			warn("rateLimits[%d]: rate %d MiB/s is above %d; skipped", i, rl.Rate, MaxRateMiBps)
		default:
			fw.RateLimits = append(fw.RateLimits, RateLimit{NetworkID: rl.NetworkID, Interface: fmt.Sprintf("vrf%d", n.Vrf), MiBps: rl.Rate})
		}
	}

	for i, er := range spec.EgressRules {
		n, ok := networks[er.NetworkID]
		if !ok || n.Vrf <= 0 {
			warn("egressRules[%d]: network %q is not attached to the firewall or has no VRF; skipped", i, printable(er.NetworkID))
			continue
		}
		netPrefixes := prefixes(fmt.Sprintf("firewallNetworks[%s].prefixes", printable(n.NetworkID)), n.Prefixes)
		snat := SNAT{NetworkID: er.NetworkID, Interface: fmt.Sprintf("vlan%d", n.Vrf)}
		for j, s := range er.IPs {
			addr, err := netip.ParseAddr(s)
			if err != nil || addr.Zone() != "" {
				warn("egressRules[%d].ips[%d]: %q is not an IP address; skipped", i, j, printable(s))
				continue
			}
			addr = addr.Unmap()
			if len(netPrefixes) > 0 && !containsAddr(netPrefixes, addr) {
				warn("egressRules[%d].ips[%d]: %s is not inside network %q; skipped", i, j, addr, printable(er.NetworkID))
				continue
			}
			snat.IPs = append(snat.IPs, addr)
		}
		if len(snat.IPs) > 0 {
			fw.SNAT = append(fw.SNAT, snat)
		}
	}

	if up, err := parseDNSUpstream(spec.DNSServerAddress, spec.DNSPort); err != nil {
		warn("%v; the DNS proxy uses its configured resolvers", err)
	} else {
		fw.DNSUpstream = up
	}

	if len(spec.AllowedNetworks.Ingress)+len(spec.AllowedNetworks.Egress) > 0 {
		fw.Allowed = &Allowed{
			Ingress: prefixes("allowedNetworks.ingress", spec.AllowedNetworks.Ingress),
			Egress:  prefixes("allowedNetworks.egress", spec.AllowedNetworks.Egress),
		}
	}
	return fw
}

func isPrivate(networkType string) bool {
	return strings.HasPrefix(strings.ToLower(networkType), "privateprimary")
}

func containsAddr(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// containsPrefix reports whether one of outer covers inner completely.
func containsPrefix(outer []netip.Prefix, inner netip.Prefix) bool {
	for _, o := range outer {
		if o.Addr().Is4() == inner.Addr().Is4() && o.Bits() <= inner.Bits() && o.Contains(inner.Addr()) {
			return true
		}
	}
	return false
}
