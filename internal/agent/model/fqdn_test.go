package model

import (
	"net/netip"
	"strings"
	"testing"
)

func TestNameMatcher(t *testing.T) {
	cases := []struct {
		sel   FQDNSelector
		name  string
		match bool
	}{
		{FQDNSelector{MatchName: "api.github.com"}, "api.github.com.", true},
		{FQDNSelector{MatchName: "API.GitHub.com."}, "api.github.com", true}, // case and trailing dot
		{FQDNSelector{MatchName: "api.github.com"}, "Api.GITHUB.com.", true},
		{FQDNSelector{MatchName: "api.github.com"}, "github.com.", false},
		{FQDNSelector{MatchName: "api.github.com"}, "x.api.github.com.", false},
		{FQDNSelector{MatchName: "_sip._tcp.example.com"}, "_sip._tcp.example.com.", true},
		{FQDNSelector{MatchPattern: "*.example.com"}, "a.example.com.", true},
		{FQDNSelector{MatchPattern: "*.example.com"}, "a.b.example.com.", true}, // crosses labels, as upstream
		{FQDNSelector{MatchPattern: "*.example.com"}, "example.com.", false},
		{FQDNSelector{MatchPattern: "*.example.com"}, "aexample.com.", false},
		{FQDNSelector{MatchPattern: "*.Example.COM."}, "A.EXAMPLE.com", true},
		{FQDNSelector{MatchPattern: "*example.com"}, "example.com.", true}, // '*' may be empty
		{FQDNSelector{MatchPattern: "api-*.example.com"}, "api-eu.example.com.", true},
		{FQDNSelector{MatchPattern: "api-*.example.com"}, "web-eu.example.com.", false},
		{FQDNSelector{MatchPattern: "*"}, "anything.at.all.", true},
		{FQDNSelector{MatchPattern: "a.b"}, "axb.", false}, // dots are literal
	}
	for _, c := range cases {
		m, err := ParseNameMatcher(c.sel)
		if err != nil {
			t.Fatalf("%+v: %v", c.sel, err)
		}
		if got := m.Matches(c.name); got != c.match {
			t.Errorf("%+v matches %q = %v, want %v", c.sel, c.name, got, c.match)
		}
	}
}

func TestFQDNRuleRefusals(t *testing.T) {
	cases := map[string]struct {
		rule EgressRule
		want string
	}{
		"to and toFQDNs": {EgressRule{Ports: []PolicyPort{{Port: p32(443)}}, To: []IPBlock{{CIDR: "1.1.1.1"}}, ToFQDNs: []FQDNSelector{{MatchName: "a.example."}}}, "egress[0]: to and toFQDNs are mutually exclusive"},
		"empty selector": {EgressRule{Ports: []PolicyPort{{Port: p32(443)}}, ToFQDNs: []FQDNSelector{{}}}, "egress[0].toFQDNs[0]: needs matchName or matchPattern"},
		"both":           {EgressRule{Ports: []PolicyPort{{Port: p32(443)}}, ToFQDNs: []FQDNSelector{{MatchName: "a.", MatchPattern: "*"}}}, "mutually exclusive"},
		"star in name":   {EgressRule{Ports: []PolicyPort{{Port: p32(443)}}, ToFQDNs: []FQDNSelector{{MatchName: "*.example.com"}}}, "egress[0].toFQDNs[0]: matchName"},
		"bad chars":      {EgressRule{Ports: []PolicyPort{{Port: p32(443)}}, ToFQDNs: []FQDNSelector{{MatchPattern: "a b.com"}}}, "matchPattern"},
		"bad port":       {EgressRule{Ports: []PolicyPort{{Port: p32(0)}}, ToFQDNs: []FQDNSelector{{MatchName: "a.com"}}}, "egress[0].ports[0].port"},
	}
	for name, c := range cases {
		_, verdicts := Compose(Firewall{}, []PolicyInput{{Key: ObjectKey{Name: "p"}, Spec: PolicySpec{Egress: []EgressRule{c.rule}}}}, nil)
		if verdicts[0].Accepted || !strings.Contains(verdicts[0].Message, c.want) {
			t.Errorf("%s: %+v, want refusal %q", name, verdicts[0], c.want)
		}
	}
}

// A toFQDNs policy is not refused by allowedNetworks (names are no CIDRs); the cap applies
// to every learned address instead.
func TestFQDNUnderAllowedNetworks(t *testing.T) {
	fw := ParseFirewall(FirewallSpec{AllowedNetworks: AllowedNetworks{Egress: []string{"10.0.0.0/8", "fd00::/8"}}})
	in := PolicyInput{Key: ObjectKey{Name: "p"}, Spec: PolicySpec{Egress: []EgressRule{{Ports: []PolicyPort{{Port: p32(443)}}, ToFQDNs: []FQDNSelector{{MatchName: "a.example"}}}}}}
	snap, verdicts := Compose(fw, []PolicyInput{in}, nil)
	if !verdicts[0].Accepted || len(snap.Policies[0].FQDN) != 1 {
		t.Fatalf("%+v", verdicts)
	}
	for addr, want := range map[string]bool{"10.1.2.3": true, "192.168.1.1": false, "fd01::1": true, "2001:db8::1": false} {
		if got := fw.Allowed.AllowsEgress(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s allowed = %v, want %v", addr, got, want)
		}
	}
	if !(*Allowed)(nil).AllowsEgress(netip.MustParseAddr("1.1.1.1")) {
		t.Error("no cap must allow everything")
	}
}

func TestDNSUpstreamFromSpec(t *testing.T) {
	port := uint(5353)
	cases := []struct {
		spec FirewallSpec
		want string
		warn bool
	}{
		{FirewallSpec{}, "invalid AddrPort", false},
		{FirewallSpec{DNSServerAddress: "10.0.0.53"}, "10.0.0.53:53", false},
		{FirewallSpec{DNSServerAddress: "fd00::53", DNSPort: &port}, "[fd00::53]:5353", false},
		{FirewallSpec{DNSServerAddress: "dns.example"}, "invalid AddrPort", true},
	}
	for _, c := range cases {
		fw := ParseFirewall(c.spec)
		if fw.DNSUpstream.String() != c.want || (len(fw.Warnings) > 0) != c.warn {
			t.Errorf("%+v: %s %v", c.spec, fw.DNSUpstream, fw.Warnings)
		}
	}
}

// A toFQDNs rule without ports opens every protocol and port to the learned addresses, like
// every other rule without ports, and says so.
func TestFQDNRuleWithoutPortsOpensEveryPort(t *testing.T) {
	p, err := ParsePolicy(ObjectKey{Name: "p"}, PolicySpec{Egress: []EgressRule{{ToFQDNs: []FQDNSelector{{MatchName: "example.com"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.FQDN) != 1 || len(p.FQDN[0].Ports) != 0 || len(p.Egress) != 0 {
		t.Errorf("rule: %+v", p)
	}
	if len(p.Notes) != 1 || p.Notes[0] != "egress[0]: no ports: every protocol and port" {
		t.Errorf("notes: %q", p.Notes)
	}
}
