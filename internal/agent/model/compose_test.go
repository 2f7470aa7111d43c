package model

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func verdictOf(t *testing.T, verdicts []Verdict, name string) Verdict {
	t.Helper()
	for _, v := range verdicts {
		if v.Key.Name == name {
			return v
		}
	}
	t.Fatalf("no verdict for %s in %+v", name, verdicts)
	return Verdict{}
}

// A load-balancer IP must lie in a network of the firewall (cluster prefixes, private, DMZ
// and external networks: metal-stack allocates LoadBalancer IPs from the internet network),
// IPv4 and IPv6; an address no network holds is refused with the reason. The underlay never
// holds service IPs.
func TestServiceIPsOnlyFromTheClusterSide(t *testing.T) {
	fw := ParseFirewall(FirewallSpec{FirewallNetworks: []FirewallNetwork{
		{NetworkID: "node", NetworkType: "privateprimaryunshared", Vrf: 1, Prefixes: []string{"10.1.0.0/24", "fd01::/64"}},
		{NetworkID: "dmz", NetworkType: "privatesecondaryshared", Vrf: 2, Prefixes: []string{"10.2.0.0/24", "fd02::/64"}},
		{NetworkID: "internet", NetworkType: "external", Vrf: 3, Prefixes: []string{"185.1.2.0/24", "2001:db8::/32"}},
		{NetworkID: "underlay", NetworkType: "underlay", Prefixes: []string{"10.0.12.0/22"}},
	}})
	svc := func(name string, ips ...string) ServiceInput {
		return ServiceInput{Key: ObjectKey{Source: "shoot", Namespace: "ns", Name: name}, Spec: ServiceSpec{Name: name, IPs: ips, Ports: []ServicePort{{Port: 443}}}}
	}
	for _, c := range []struct {
		name string
		ips  []string
		ok   bool
	}{
		{"node-net-v4", []string{"10.1.0.50"}, true},
		{"dmz-v4", []string{"10.2.0.10"}, true},
		{"dmz-v6", []string{"fd02::10"}, true},
		{"dual", []string{"10.2.0.11", "fd02::11"}, true},
		{"outside-v4", []string{"8.8.8.8"}, false},
		{"outside-v6", []string{"2606:4700::1111"}, false},
		{"external-network-v4", []string{"185.1.2.3"}, true},
		{"external-network-v6", []string{"2001:db8::5"}, true},
		{"no-network-v4", []string{"203.0.113.7"}, false},
		{"underlay", []string{"10.0.12.5"}, false},
		{"one-outside", []string{"10.2.0.12", "8.8.4.4"}, false},
	} {
		snap, verdicts := Compose(fw, nil, []ServiceInput{svc(c.name, c.ips...)})
		v := verdictOf(t, verdicts, c.name)
		if v.Accepted != c.ok || (len(snap.Services) == 1) != c.ok {
			t.Errorf("%s: accepted %v, want %v (%s)", c.name, v.Accepted, c.ok, v.Message)
		}
		if !c.ok && !strings.Contains(v.Message, "is in no network of the firewall") {
			t.Errorf("%s: reason %q", c.name, v.Message)
		}
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("fd01::/64"), netip.MustParsePrefix("10.2.0.0/24"), netip.MustParsePrefix("fd02::/64"),
		netip.MustParsePrefix("185.1.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	if !slices.Equal(fw.ServicePrefixes, want) {
		t.Errorf("service prefixes %v, want %v", fw.ServicePrefixes, want)
	}
}

// Copies of one object with the same spec are merged; copies that differ are refused, in
// whatever order they come.
func TestDuplicatesMergedOrRefused(t *testing.T) {
	fw := ParseFirewall(FirewallSpec{ClusterPrefixes: []string{"10.1.0.0/24"}})
	svc := func(port int32) ServiceInput {
		return ServiceInput{Key: ObjectKey{Source: "static", Namespace: "x", Name: "web"}, Spec: ServiceSpec{Name: "web", Namespace: "x", IPs: []string{"10.1.0.9"}, Ports: []ServicePort{{Port: port}}}}
	}
	pol := func(name string, port int32) PolicyInput {
		return PolicyInput{Key: ObjectKey{Source: "static", Name: name}, Spec: PolicySpec{Egress: []EgressRule{{Ports: []PolicyPort{{Port: p32(port)}}}}}}
	}
	for _, order := range [][]int{{0, 1}, {1, 0}} {
		same := []ServiceInput{svc(443), svc(443)}
		snap, verdicts := Compose(fw, []PolicyInput{pol("a", 1), pol("a", 1)}, same)
		if len(snap.Services) != 1 || len(snap.Policies) != 1 || len(verdicts) != 2 {
			t.Fatalf("identical copies not merged: %+v %+v", snap, verdicts)
		}
		for _, v := range verdicts {
			if !v.Accepted || !strings.Contains(v.Message, "listed 2 times with the same spec; merged") {
				t.Errorf("merged %s: %+v", v.Kind, v)
			}
		}
		differ := []ServiceInput{svc(443), svc(8443)}
		pols := []PolicyInput{pol("b", 1), pol("b", 2)}
		differ[0], differ[1] = differ[order[0]], differ[order[1]]
		pols[0], pols[1] = pols[order[0]], pols[order[1]]
		snap, verdicts = Compose(fw, pols, differ)
		if len(snap.Services) != 0 || len(snap.Policies) != 0 || len(verdicts) != 2 {
			t.Fatalf("differing copies not refused: %+v %+v", snap, verdicts)
		}
		for _, v := range verdicts {
			if v.Accepted || !strings.Contains(v.Message, "listed 2 times with different specs") {
				t.Errorf("refused %s: %+v", v.Kind, v)
			}
		}
	}
}

// The default egress is a policy like any other: TCP 443, TCP/UDP 53 to every address,
// narrowed by allowedNetworks, and its message says where it comes from.
func TestDefaultEgress(t *testing.T) {
	pols, verdicts := ComposePolicies(Firewall{}, []PolicyInput{DefaultEgress()})
	if len(pols) != 1 || !verdicts[0].Accepted || verdicts[0].Message != DefaultEgressComment || pols[0].Comment != DefaultEgressComment {
		t.Fatalf("%+v %+v", pols, verdicts)
	}
	r := pols[0].Egress[0]
	want := []PortRange{{TCP, 443, 443}, {TCP, 53, 53}, {UDP, 53, 53}}
	if len(r.Ports) != 3 || r.Ports[0] != want[0] || r.Ports[1] != want[1] || r.Ports[2] != want[2] || len(r.Peers) != 2 {
		t.Errorf("default egress rule %+v", r)
	}
	capped := ParseFirewall(FirewallSpec{AllowedNetworks: AllowedNetworks{Egress: []string{"10.50.0.0/16"}}})
	pols, verdicts = ComposePolicies(capped, []PolicyInput{DefaultEgress()})
	if len(pols) != 1 || len(pols[0].Egress[0].Peers) != 1 || pols[0].Egress[0].Peers[0].Prefix != netip.MustParsePrefix("10.50.0.0/16") {
		t.Errorf("default egress under allowedNetworks: %+v %+v", pols, verdicts)
	}
}

// allowedNetworks: a rule without peers means every allowed network; a listed peer outside
// still refuses the policy.
func TestAllowedNetworksNarrowEverywhere(t *testing.T) {
	fw := ParseFirewall(FirewallSpec{AllowedNetworks: AllowedNetworks{Egress: []string{"10.50.0.0/16", "fd50::/48"}}})
	open := PolicyInput{Key: ObjectKey{Name: "open"}, Spec: PolicySpec{Egress: []EgressRule{{}}, Ingress: []IngressRule{{}}}}
	pols, verdicts := ComposePolicies(fw, []PolicyInput{open})
	if len(pols) != 1 {
		t.Fatalf("%+v", verdicts)
	}
	if e := pols[0].Egress[0]; len(e.Peers) != 2 || !e.AllPorts() {
		t.Errorf("egress %+v", e)
	}
	if i := pols[0].Ingress[0]; len(i.Peers) != 0 {
		t.Errorf("ingress with an empty allowedNetworks.ingress must open nothing: %+v", i)
	}
	if !strings.Contains(verdicts[0].Message, "egress[0]: every address within allowedNetworks.egress") {
		t.Errorf("message %q", verdicts[0].Message)
	}
}

// The note names the rule by its place in the manifest: a toFQDNs rule before it is kept
// apart in Policy.FQDN, yet the open rule is still egress[1].
func TestAllowedNetworksNoteNamesTheManifestRule(t *testing.T) {
	fw := ParseFirewall(FirewallSpec{AllowedNetworks: AllowedNetworks{Egress: []string{"10.50.0.0/16"}}})
	spec := PolicySpec{Egress: []EgressRule{{ToFQDNs: []FQDNSelector{{MatchName: "example.com"}}}, {}}}
	pols, verdicts := ComposePolicies(fw, []PolicyInput{{Key: ObjectKey{Name: "mixed"}, Spec: spec}})
	if len(pols) != 1 || pols[0].Egress[0].Index != 1 {
		t.Fatalf("%+v %+v", pols, verdicts)
	}
	if msg := verdicts[0].Message; !strings.Contains(msg, "egress[1]: every address within allowedNetworks.egress") || strings.Contains(msg, "egress[0]: every address") {
		t.Errorf("message %q", msg)
	}
}

func TestRateLimitTheKernelRefusesIsSkipped(t *testing.T) {
	fw := ParseFirewall(FirewallSpec{
		FirewallNetworks: []FirewallNetwork{{NetworkID: "internet", Vrf: 3}},
		RateLimits:       []RateLimitSpec{{NetworkID: "internet", Rate: 4294967295}},
	})
	if len(fw.RateLimits) != 0 || len(fw.Warnings) != 1 || !strings.Contains(fw.Warnings[0], "above") {
		t.Errorf("%+v", fw)
	}
}
