package firewall

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-fw/palisade/internal/metal"
)

func TestSplitByFamily(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *metal.FirewallRules
		want *metal.FirewallRules
	}{
		{name: "nil stays nil"},
		{
			name: "single family unchanged",
			in:   &metal.FirewallRules{Egress: []metal.FirewallEgressRule{{Comment: "https", Protocol: "tcp", Ports: []int32{443}, To: []string{"0.0.0.0/0"}}}},
			want: &metal.FirewallRules{Egress: []metal.FirewallEgressRule{{Comment: "https", Protocol: "tcp", Ports: []int32{443}, To: []string{"0.0.0.0/0"}}}},
		},
		{
			name: "mixed egress becomes IPv4 then IPv6",
			in: &metal.FirewallRules{Egress: []metal.FirewallEgressRule{
				{Comment: "dns", Protocol: "udp", Ports: []int32{53}, To: []string{"::/0", "0.0.0.0/0", "10.0.0.0/8"}},
				{Comment: "ntp", Protocol: "udp", Ports: []int32{123}, To: []string{"2001:db8::/32"}},
			}},
			want: &metal.FirewallRules{Egress: []metal.FirewallEgressRule{
				{Comment: "dns", Protocol: "udp", Ports: []int32{53}, To: []string{"0.0.0.0/0", "10.0.0.0/8"}},
				{Comment: "dns", Protocol: "udp", Ports: []int32{53}, To: []string{"::/0"}},
				{Comment: "ntp", Protocol: "udp", Ports: []int32{123}, To: []string{"2001:db8::/32"}},
			}},
		},
		{
			name: "mixed ingress sources",
			in: &metal.FirewallRules{Ingress: []metal.FirewallIngressRule{
				{Comment: "ssh", Protocol: "tcp", Ports: []int32{22}, From: []string{"0.0.0.0/0", "::/0"}},
			}},
			want: &metal.FirewallRules{Ingress: []metal.FirewallIngressRule{
				{Comment: "ssh", Protocol: "tcp", Ports: []int32{22}, From: []string{"0.0.0.0/0"}},
				{Comment: "ssh", Protocol: "tcp", Ports: []int32{22}, From: []string{"::/0"}},
			}},
		},
		{
			name: "ingress destinations pair with sources of their family",
			in: &metal.FirewallRules{Ingress: []metal.FirewallIngressRule{
				{Comment: "api", Protocol: "tcp", Ports: []int32{443}, From: []string{"0.0.0.0/0", "::/0"}, To: []string{"2001:db8::1/128", "192.0.2.1/32"}},
			}},
			want: &metal.FirewallRules{Ingress: []metal.FirewallIngressRule{
				{Comment: "api", Protocol: "tcp", Ports: []int32{443}, From: []string{"0.0.0.0/0"}, To: []string{"192.0.2.1/32"}},
				{Comment: "api", Protocol: "tcp", Ports: []int32{443}, From: []string{"::/0"}, To: []string{"2001:db8::1/128"}},
			}},
		},
		{
			name: "a family without destinations is dropped, not widened to every destination",
			in: &metal.FirewallRules{Ingress: []metal.FirewallIngressRule{
				{Comment: "web", Protocol: "tcp", Ports: []int32{80}, From: []string{"0.0.0.0/0", "::/0"}, To: []string{"192.0.2.1/32"}},
			}},
			want: &metal.FirewallRules{Ingress: []metal.FirewallIngressRule{
				{Comment: "web", Protocol: "tcp", Ports: []int32{80}, From: []string{"0.0.0.0/0"}, To: []string{"192.0.2.1/32"}},
			}},
		},
		{
			name: "IPv4 comes first whatever the input order",
			in:   &metal.FirewallRules{Egress: []metal.FirewallEgressRule{{Protocol: "tcp", Ports: []int32{80, 443}, To: []string{"::/0", "0.0.0.0/0"}}}},
			want: &metal.FirewallRules{Egress: []metal.FirewallEgressRule{
				{Protocol: "tcp", Ports: []int32{80, 443}, To: []string{"0.0.0.0/0"}},
				{Protocol: "tcp", Ports: []int32{80, 443}, To: []string{"::/0"}},
			}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, splitByFamily(tc.in)); diff != "" {
				t.Errorf("splitByFamily (-want +got):\n%s", diff)
			}
		})
	}
}
