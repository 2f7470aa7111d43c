package model

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// NameMatcher is a parsed toFQDNs selector: an exact name or a pattern, both compared
// case-insensitively against fully qualified names (trailing dot).
type NameMatcher struct {
	// Selector is the matchName or matchPattern as written; it keys the status fqdn_state.
	Selector string
	// Name is the lower-cased, fully qualified matchName; empty for a pattern.
	Name string
	// pattern matches the whole lower-cased, fully qualified name.
	pattern *regexp.Regexp
}

// Matches reports whether name (any case, with or without trailing dot) is selected.
func (m NameMatcher) Matches(name string) bool {
	name = CanonicalName(name)
	if m.pattern != nil {
		return m.pattern.MatchString(name)
	}
	return name == m.Name
}

// IsPattern tells a matchPattern from a matchName.
func (m NameMatcher) IsPattern() bool { return m.pattern != nil }

// CanonicalName lower-cases a DNS name and makes it fully qualified.
func CanonicalName(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// FQDNRule is an egress rule whose destinations are the addresses the DNS proxy learns for
// the selected names. Index is the rule's position in spec.egress; it names the rule's sets.
type FQDNRule struct {
	Index     int
	Selectors []NameMatcher
	Ports     []PortRange
}

// Matches reports whether one of the rule's selectors selects name.
func (r FQDNRule) Matches(name string) bool {
	for _, s := range r.Selectors {
		if s.Matches(name) {
			return true
		}
	}
	return false
}

// DNSUpstream is the resolver the DNS proxy forwards to, from Firewall.spec.dnsServerAddress
// and dnsPort; the zero value means "not set" (the agent then uses its configured resolvers).
type DNSUpstream = netip.AddrPort

// parseFQDNRule parses an egress rule with toFQDNs. A rule without ports opens every
// protocol and port to the learned addresses and says so, like any other rule.
func parseFQDNRule(path string, index int, out EgressRule) (FQDNRule, []string, bool, error) {
	if len(out.To) > 0 {
		// Upstream silently preferred `to`; a policy that says both is ambiguous.
		return FQDNRule{}, nil, false, fmt.Errorf("%s: to and toFQDNs are mutually exclusive", path)
	}
	rule := FQDNRule{Index: index}
	for i, s := range out.ToFQDNs {
		m, err := ParseNameMatcher(s)
		if err != nil {
			return FQDNRule{}, nil, false, fmt.Errorf("%s.toFQDNs[%d]: %w", path, i, err)
		}
		rule.Selectors = append(rule.Selectors, m)
	}
	for i, port := range out.Ports {
		pr, err := parsePolicyPort(fmt.Sprintf("%s.ports[%d]", path, i), port)
		if err != nil {
			return FQDNRule{}, nil, false, err
		}
		rule.Ports = append(rule.Ports, pr)
	}
	// Like every other rule: no ports means every protocol and port (to the learned addresses).
	if len(rule.Ports) == 0 {
		return rule, []string{path + ": no ports: every protocol and port"}, true, nil
	}
	return rule, nil, true, nil
}

// ParseNameMatcher parses a selector. matchName is an exact name. matchPattern follows
// upstream: '*' matches any run (also empty) of letters, digits, '-', '_' and '.', so it
// crosses label boundaries ("*.example.com" matches "a.b.example.com", "*" matches every
// name); everything else matches itself. Both ignore case and a trailing dot.
func ParseNameMatcher(s FQDNSelector) (NameMatcher, error) {
	switch {
	case s.MatchName != "" && s.MatchPattern != "":
		return NameMatcher{}, fmt.Errorf("matchName and matchPattern are mutually exclusive")
	case s.MatchName != "":
		if err := checkNameChars(s.MatchName, false); err != nil {
			return NameMatcher{}, fmt.Errorf("matchName: %w", err)
		}
		return NameMatcher{Selector: s.MatchName, Name: CanonicalName(s.MatchName)}, nil
	case s.MatchPattern != "":
		if err := checkNameChars(s.MatchPattern, true); err != nil {
			return NameMatcher{}, fmt.Errorf("matchPattern: %w", err)
		}
		parts := strings.Split(CanonicalName(s.MatchPattern), "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile("^" + strings.Join(parts, "[-a-z0-9_.]*") + "$")
		return NameMatcher{Selector: s.MatchPattern, pattern: re}, nil
	}
	return NameMatcher{}, fmt.Errorf("needs matchName or matchPattern")
}

// checkNameChars accepts what the CRD accepts: letters, digits, '-', '_', '.' (and '*' in
// patterns), at most 253 characters, no empty label.
func checkNameChars(s string, pattern bool) error {
	if len(s) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", printable(s))
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || pattern && r == '*'
		if !ok {
			return fmt.Errorf("%q contains %s", printable(s), strconv.QuoteRune(r))
		}
	}
	if strings.Contains(s, "..") || strings.HasPrefix(s, ".") {
		return fmt.Errorf("%q has an empty label", printable(s))
	}
	return nil
}

// AllowsEgress reports whether the allowedNetworks cap lets the cluster reach addr; a nil cap
// allows everything. It caps the addresses an FQDN rule may open.
func (a *Allowed) AllowsEgress(addr netip.Addr) bool {
	return a == nil || containsAddr(a.Egress, addr)
}

// parseDNSUpstream reads dnsServerAddress and dnsPort (default 53).
func parseDNSUpstream(address string, port *uint) (DNSUpstream, error) {
	if address == "" {
		return DNSUpstream{}, nil
	}
	addr, err := netip.ParseAddr(address)
	if err != nil || addr.Zone() != "" {
		return DNSUpstream{}, fmt.Errorf("dnsServerAddress: %q is not an IP address", printable(address))
	}
	p := uint(53)
	if port != nil {
		p = *port
	}
	if p < 1 || p > 65535 {
		return DNSUpstream{}, fmt.Errorf("dnsPort: %d is not between 1 and 65535", p)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(p)), nil
}
