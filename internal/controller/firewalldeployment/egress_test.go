package firewalldeployment

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func TestShootName(t *testing.T) {
	for ns, want := range map[string]string{
		"shoot--proj--name":       "name",
		"shoot--proj--name--with": "name--with",
		"shoot--proj":             "",
		"garden":                  "",
		"shoot----name":           "",
		"default":                 "",
	} {
		if got := shootName(ns); got != want {
			t.Errorf("shootName(%q) = %q, want %q", ns, got, want)
		}
	}
}

func TestEgressCIDRs(t *testing.T) {
	external, private := "external", "privateprimaryunshared"
	fw := func(networks ...v2.FirewallNetwork) *v2.Firewall {
		return &v2.Firewall{Status: v2.FirewallStatus{FirewallNetworks: networks}}
	}
	for _, tc := range []struct {
		name      string
		firewalls []*v2.Firewall
		ruleIPs   []string
		want      []string
	}{
		{name: "nothing"},
		{
			name: "external IPs of every firewall, private ones left out",
			firewalls: []*v2.Firewall{
				fw(v2.FirewallNetwork{NetworkType: &external, IPs: []string{"203.0.113.7"}}, v2.FirewallNetwork{NetworkType: &private, IPs: []string{"10.0.0.1"}}),
				fw(v2.FirewallNetwork{NetworkType: &external, IPs: []string{"203.0.113.5", "2001:db8::5"}}),
			},
			want: []string{"2001:db8::5/128", "203.0.113.5/32", "203.0.113.7/32"},
		},
		{
			name:      "egress rule IPs added, duplicates and garbage dropped",
			firewalls: []*v2.Firewall{fw(v2.FirewallNetwork{NetworkType: &external, IPs: []string{"203.0.113.7"}})},
			ruleIPs:   []string{"203.0.113.7", "198.51.100.1", "not-an-ip"},
			want:      []string{"198.51.100.1/32", "203.0.113.7/32"},
		},
		{name: "network without a type", firewalls: []*v2.Firewall{fw(v2.FirewallNetwork{IPs: []string{"203.0.113.7"}})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, egressCIDRs(tc.firewalls, tc.ruleIPs)); diff != "" {
				t.Errorf("egressCIDRs (-want +got):\n%s", diff)
			}
		})
	}
}
