package model

import (
	"fmt"
	"net/netip"
	"strings"
)

// everyV4 and everyV6 stand for "any address" when a rule lists no peers.
var (
	everyV4 = netip.MustParsePrefix("0.0.0.0/0")
	everyV6 = netip.MustParsePrefix("::/0")
)

// ParsePolicy validates a CWNP spec. An error refuses the whole object; rules that are valid
// but cannot be enforced are skipped and explained in Policy.Notes.
func ParsePolicy(key ObjectKey, spec PolicySpec) (Policy, error) {
	p := Policy{Key: key}
	for i, in := range spec.Ingress {
		path := fmt.Sprintf("ingress[%d]", i)
		rule, notes, ok, err := parseRule(path, i, in.Ports, in.From, "from")
		if err != nil {
			return Policy{}, err
		}
		p.Notes = append(p.Notes, notes...)
		if ok {
			p.Ingress = append(p.Ingress, rule)
		}
	}
	for i, out := range spec.Egress {
		path := fmt.Sprintf("egress[%d]", i)
		if len(out.ToFQDNs) > 0 {
			rule, notes, ok, err := parseFQDNRule(path, i, out)
			if err != nil {
				return Policy{}, err
			}
			p.Notes = append(p.Notes, notes...)
			if ok {
				p.FQDN = append(p.FQDN, rule)
			}
			continue
		}
		rule, notes, ok, err := parseRule(path, i, out.Ports, out.To, "to")
		if err != nil {
			return Policy{}, err
		}
		p.Notes = append(p.Notes, notes...)
		if ok {
			p.Egress = append(p.Egress, rule)
		}
	}
	return p, nil
}

// parseRule parses one rule; notes explain what the rule opens where the manifest leaves
// it implicit, and any part of the rule that was ignored.
func parseRule(path string, index int, ports []PolicyPort, blocks []IPBlock, peerKey string) (rule Rule, notes []string, ok bool, err error) {
	rule.Index = index
	for i, port := range ports {
		pr, err := parsePolicyPort(fmt.Sprintf("%s.ports[%d]", path, i), port)
		if err != nil {
			return Rule{}, nil, false, err
		}
		rule.Ports = append(rule.Ports, pr)
	}
	for i, block := range blocks {
		peer, exceptNotes, err := parseIPBlock(fmt.Sprintf("%s.%s[%d]", path, peerKey, i), block)
		if err != nil {
			return Rule{}, nil, false, err
		}
		rule.Peers = append(rule.Peers, peer)
		notes = append(notes, exceptNotes...)
	}
	// As the CWNP API documents it (and Kubernetes NetworkPolicy): no ports means every
	// protocol and port, no peers means every address.
	if len(rule.Ports) == 0 {
		notes = append(notes, path+": no ports: every protocol and port")
	}
	if len(rule.Peers) == 0 {
		rule.Peers, rule.Everywhere = []Peer{{Prefix: everyV4}, {Prefix: everyV6}}, true
		notes = append(notes, fmt.Sprintf("%s: no %s: every address", path, peerKey))
	}
	return rule, notes, true, nil
}

func parsePolicyPort(path string, p PolicyPort) (PortRange, error) {
	proto := TCP
	if p.Protocol != nil {
		var err error
		if proto, err = ParseProtocol(*p.Protocol); err != nil {
			return PortRange{}, fmt.Errorf("%s.protocol: %w", path, err)
		}
	}
	if p.Port == nil {
		if p.EndPort != nil {
			return PortRange{}, fmt.Errorf("%s.endPort: needs port", path)
		}
		return PortRange{Protocol: proto, First: 0, Last: 65535}, nil
	}
	first, err := parsePortNumber(*p.Port)
	if err != nil {
		return PortRange{}, fmt.Errorf("%s.port: %w", path, err)
	}
	last := first
	if p.EndPort != nil {
		if last, err = parsePortNumber(*p.EndPort); err != nil {
			return PortRange{}, fmt.Errorf("%s.endPort: %w", path, err)
		}
		if last < first {
			return PortRange{}, fmt.Errorf("%s.endPort: %d is below port %d", path, last, first)
		}
	}
	return PortRange{Protocol: proto, First: first, Last: last}, nil
}

func parsePortNumber(v int32) (uint16, error) {
	if v < 1 || v > 65535 {
		return 0, fmt.Errorf("%d is not between 1 and 65535", v)
	}
	return uint16(v), nil
}

// ParseProtocol accepts TCP, UDP and SCTP in any case.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToUpper(s) {
	case "TCP", "":
		return TCP, nil
	case "UDP":
		return UDP, nil
	case "SCTP":
		return SCTP, nil
	}
	return 0, fmt.Errorf("%q is not one of TCP, UDP, SCTP", printable(s))
}

func parseIPBlock(path string, b IPBlock) (Peer, []string, error) {
	prefix, err := ParsePrefix(b.CIDR)
	if err != nil {
		return Peer{}, nil, fmt.Errorf("%s.cidr: %w", path, err)
	}
	peer := Peer{Prefix: prefix}
	var notes []string
	for i, e := range b.Except {
		ex, err := ParsePrefix(e)
		if err != nil {
			return Peer{}, nil, fmt.Errorf("%s.except[%d]: %w", path, i, err)
		}
		// Upstream manifests may except CIDRs that reach beyond the block (the CRD accepts
		// them). Only the overlap can be excepted: two prefixes either nest or are disjoint.
		switch {
		case ex.Addr().Is4() == prefix.Addr().Is4() && ex.Bits() >= prefix.Bits() && prefix.Contains(ex.Addr()):
			peer.Except = append(peer.Except, ex)
		case ex.Addr().Is4() == prefix.Addr().Is4() && ex.Contains(prefix.Addr()):
			peer.Except = append(peer.Except, prefix)
			notes = append(notes, fmt.Sprintf("%s.except[%d]: %s covers all of %s; the block opens nothing", path, i, ex, prefix))
		default:
			notes = append(notes, fmt.Sprintf("%s.except[%d]: %s is outside %s; ignored", path, i, ex, prefix))
		}
	}
	return peer, notes, nil
}

// ParsePrefix parses a CIDR and masks host bits; a bare address is a single-host prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", printable(s))
		}
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", printable(s))
	}
	return p.Masked(), nil
}

// printable shortens and strips a user string before it goes into an error message.
func printable(s string) string {
	const maxLen = 64
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxLen {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r == 0x7f {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
