package model

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func p32(v int32) *int32   { return &v }
func str(s string) *string { return &s }

func TestParsePolicyRefusals(t *testing.T) {
	cases := map[string]struct {
		spec PolicySpec
		want string
	}{
		"endPort below port": {PolicySpec{Egress: []EgressRule{{Ports: []PolicyPort{{Port: p32(8080), EndPort: p32(8000)}}}}}, "egress[0].ports[0].endPort: 8000 is below port 8080"},
		"port zero":          {PolicySpec{Ingress: []IngressRule{{Ports: []PolicyPort{{Port: p32(0)}}}}}, "ingress[0].ports[0].port"},
		"bad protocol":       {PolicySpec{Egress: []EgressRule{{Ports: []PolicyPort{{Protocol: str("ICMP")}}}}}, "is not one of TCP, UDP, SCTP"},
		"bad except":         {PolicySpec{Egress: []EgressRule{{Ports: []PolicyPort{{Port: p32(1)}}, To: []IPBlock{{CIDR: "10.0.0.0/8", Except: []string{"10.0.0.0/40"}}}}}}, "egress[0].to[0].except[0]"},
		"bad cidr":           {PolicySpec{Ingress: []IngressRule{{Ports: []PolicyPort{{Port: p32(1)}}, From: []IPBlock{{CIDR: "10.0.0.0/33"}}}}}, "ingress[0].from[0].cidr"},
		"to and toFQDNs":     {PolicySpec{Egress: []EgressRule{{Ports: []PolicyPort{{Port: p32(1)}}, To: []IPBlock{{CIDR: "1.1.1.1"}}, ToFQDNs: []FQDNSelector{{MatchName: "x."}}}}}, "mutually exclusive"},
	}
	for name, c := range cases {
		_, err := ParsePolicy(ObjectKey{Name: "p"}, c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
}

// An except reaching beyond its block (accepted by the CRD, as upstream) excepts only the
// overlap; the policy stays deployed and the status message warns.
func TestExceptOutsideBlockAppliesOverlapOnly(t *testing.T) {
	pfx := netip.MustParsePrefix
	cases := map[string]struct {
		block      IPBlock
		wantExcept []netip.Prefix
		wantNote   string
	}{
		"inside":       {IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}, []netip.Prefix{pfx("10.1.0.0/16")}, ""},
		"disjoint":     {IPBlock{CIDR: "10.0.0.0/8", Except: []string{"11.0.0.0/8"}}, nil, "egress[0].to[0].except[0]: 11.0.0.0/8 is outside 10.0.0.0/8; ignored"},
		"other family": {IPBlock{CIDR: "0.0.0.0/0", Except: []string{"::/0"}}, nil, "is outside 0.0.0.0/0; ignored"},
		"covers block": {IPBlock{CIDR: "10.1.0.0/16", Except: []string{"10.0.0.0/8"}}, []netip.Prefix{pfx("10.1.0.0/16")}, "covers all of 10.1.0.0/16"},
		"mixed": {IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.2.0.0/16", "192.168.0.0/16"}},
			[]netip.Prefix{pfx("10.2.0.0/16")}, "192.168.0.0/16 is outside"},
	}
	for name, c := range cases {
		in := PolicyInput{Key: ObjectKey{Name: "p"}, Generation: 3, Spec: PolicySpec{Egress: []EgressRule{{Ports: []PolicyPort{{Port: p32(443)}}, To: []IPBlock{c.block}}}}}
		snap, verdicts := Compose(Firewall{}, []PolicyInput{in}, nil)
		if len(verdicts) != 1 || !verdicts[0].Accepted {
			t.Errorf("%s: refused: %+v", name, verdicts)
			continue
		}
		if c.wantNote == "" && verdicts[0].Message != "" || !strings.Contains(verdicts[0].Message, c.wantNote) {
			t.Errorf("%s: message %q, want %q", name, verdicts[0].Message, c.wantNote)
		}
		got := snap.Policies[0].Egress[0].Peers[0].Except
		if !slices.Equal(got, c.wantExcept) {
			t.Errorf("%s: except %v, want %v", name, got, c.wantExcept)
		}
	}
}

// The CWNP API's documented semantics: no ports = every protocol and port, no peers = every
// address; a toFQDNs rule opens only the addresses the DNS proxy learns.
func TestParsePolicyDocumentedSemantics(t *testing.T) {
	p, err := ParsePolicy(ObjectKey{Name: "p"}, PolicySpec{Egress: []EgressRule{
		{Ports: []PolicyPort{{Port: p32(443)}}, ToFQDNs: []FQDNSelector{{MatchName: "example.com."}}},
		{To: []IPBlock{{CIDR: "1.1.1.1/32"}}},
		{Ports: []PolicyPort{{Protocol: str("udp")}}},
		{Ports: []PolicyPort{{Port: p32(22)}}, To: []IPBlock{{CIDR: "2.2.2.0/24"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The FQDN rule opens only what the DNS proxy learns, never "any destination".
	if len(p.FQDN) != 1 || p.FQDN[0].Index != 0 {
		t.Errorf("fqdn: %+v", p.FQDN)
	}
	wantNotes := []string{
		"egress[1]: no ports: every protocol and port",
		"egress[2]: no to: every address",
	}
	if !slices.Equal(p.Notes, wantNotes) {
		t.Errorf("notes: %q", p.Notes)
	}
	if len(p.Egress) != 3 {
		t.Fatalf("egress: %+v", p.Egress)
	}
	if r := p.Egress[0]; !r.AllPorts() || r.Everywhere || len(r.Peers) != 1 {
		t.Errorf("rule without ports: %+v", r)
	}
	if r := p.Egress[1]; r.AllPorts() || !r.Everywhere || len(r.Peers) != 2 || r.Ports[0] != (PortRange{Protocol: UDP, First: 0, Last: 65535}) {
		t.Errorf("rule without to: %+v", r)
	}
	// protocol defaults to TCP
	if r := p.Egress[2]; r.Ports[0] != (PortRange{Protocol: TCP, First: 22, Last: 22}) {
		t.Errorf("default protocol: %+v", r)
	}
}

func TestAllowedNetworksCap(t *testing.T) {
	fw := ParseFirewall(FirewallSpec{ClusterPrefixes: []string{"1.2.3.0/24"}, AllowedNetworks: AllowedNetworks{Egress: []string{"10.0.0.0/8"}, Ingress: []string{"192.168.0.0/16"}}})
	ok := PolicyInput{Key: ObjectKey{Name: "ok"}, Spec: PolicySpec{Egress: []EgressRule{{Ports: []PolicyPort{{Port: p32(1)}}, To: []IPBlock{{CIDR: "10.1.0.0/16"}}}}}}
	wide := PolicyInput{Key: ObjectKey{Name: "wide"}, Spec: PolicySpec{Egress: []EgressRule{{Ports: []PolicyPort{{Port: p32(1)}}, To: []IPBlock{{CIDR: "0.0.0.0/0"}}}}}}
	svcOK := ServiceInput{Key: ObjectKey{Name: "svc-ok"}, Spec: ServiceSpec{IPs: []string{"1.2.3.4"}, Ports: []ServicePort{{Port: 1}}, SourceRanges: []string{"192.168.1.0/24"}}}
	svcOpen := ServiceInput{Key: ObjectKey{Name: "svc-open"}, Spec: ServiceSpec{IPs: []string{"1.2.3.4"}, Ports: []ServicePort{{Port: 2}}}}
	snap, verdicts := Compose(fw, []PolicyInput{ok, wide}, []ServiceInput{svcOK, svcOpen})
	if len(snap.Policies) != 1 || snap.Policies[0].Key.Name != "ok" || len(snap.Services) != 1 || snap.Services[0].Key.Name != "svc-ok" {
		t.Fatalf("cap not applied per object: %+v", snap)
	}
	refused := 0
	for _, v := range verdicts {
		if !v.Accepted {
			refused++
			if !strings.Contains(v.Message, "outside allowedNetworks") {
				t.Errorf("%s: %s", v.Key, v.Message)
			}
		}
	}
	if refused != 2 {
		t.Errorf("refused %d, want 2", refused)
	}
}

func TestParseServiceNoIPOpensNothing(t *testing.T) {
	s, ok, err := ParseService(ObjectKey{Name: "s"}, ServiceSpec{Ports: []ServicePort{{Port: 443}}})
	if err != nil || !ok || len(s.IPs) != 0 || len(s.Notes) != 1 {
		t.Fatalf("%+v %v %v", s, ok, err)
	}
	if _, ok, _ := ParseService(ObjectKey{Name: "s"}, ServiceSpec{Type: "ClusterIP"}); ok {
		t.Error("ClusterIP must be skipped")
	}
}

func TestParseFirewallSkipsBadEntries(t *testing.T) {
	fw := ParseFirewall(FirewallSpec{
		InternalPrefixes: []string{"10.0.0.0/8", "nope"},
		FirewallNetworks: []FirewallNetwork{{NetworkID: "internet", Vrf: 1, Prefixes: []string{"185.1.2.0/24"}}},
		RateLimits:       []RateLimitSpec{{NetworkID: "unknown", Rate: 1}, {NetworkID: "internet", Rate: 5}},
		EgressRules:      []EgressRuleSNAT{{NetworkID: "internet", IPs: []string{"185.1.2.3", "9.9.9.9"}}},
	})
	if len(fw.InternalPrefixes) != 1 || len(fw.RateLimits) != 1 || len(fw.SNAT[0].IPs) != 1 || len(fw.Warnings) != 3 {
		t.Errorf("%+v", fw)
	}
}

// The hand-written comparison says what reflect.DeepEqual says.
func TestEqualInputsMatchDeepEqual(t *testing.T) {
	base := func() ([]PolicyInput, []ServiceInput) {
		return []PolicyInput{{Key: ObjectKey{Name: "a"}, Generation: 1, Spec: PolicySpec{
			Ingress: []IngressRule{{Ports: []PolicyPort{{Protocol: str("UDP"), Port: p32(53)}}, From: []IPBlock{{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}}},
			Egress:  []EgressRule{{Ports: []PolicyPort{{Port: p32(1), EndPort: p32(2)}}, To: []IPBlock{{CIDR: "::/0"}}, ToFQDNs: []FQDNSelector{{MatchName: "x."}}}},
		}}}, []ServiceInput{{Key: ObjectKey{Name: "s"}, Spec: ServiceSpec{Name: "s", IPs: []string{"10.0.0.1"}, Ports: []ServicePort{{Port: 80}}, SourceRanges: []string{"1.2.3.0/24"}}}}
	}
	changes := []func(p []PolicyInput, s []ServiceInput){
		func(p []PolicyInput, s []ServiceInput) {},
		func(p []PolicyInput, s []ServiceInput) { p[0].Generation = 2 },
		func(p []PolicyInput, s []ServiceInput) { p[0].Spec.Ingress[0].Ports[0].Port = p32(54) },
		func(p []PolicyInput, s []ServiceInput) { p[0].Spec.Ingress[0].Ports[0].Protocol = nil },
		func(p []PolicyInput, s []ServiceInput) { p[0].Spec.Ingress[0].From[0].Except = nil },
		func(p []PolicyInput, s []ServiceInput) { p[0].Spec.Egress[0].Ports[0].EndPort = p32(3) },
		func(p []PolicyInput, s []ServiceInput) { p[0].Spec.Egress[0].ToFQDNs[0].MatchPattern = "*" },
		func(p []PolicyInput, s []ServiceInput) { p[0].Spec.Description = "d" },
		func(p []PolicyInput, s []ServiceInput) { s[0].Spec.Ports[0].NodePort = 30000 },
		func(p []PolicyInput, s []ServiceInput) { s[0].Spec.SourceRanges = append(s[0].Spec.SourceRanges, "x") },
		func(p []PolicyInput, s []ServiceInput) { s[0].Spec.Type = "NodePort" },
	}
	for i, change := range changes {
		p1, s1 := base()
		p2, s2 := base()
		change(p2, s2)
		if got, want := EqualPolicyInputs(p1, p2), reflect.DeepEqual(p1, p2); got != want {
			t.Errorf("change %d: policies equal %v, DeepEqual %v", i, got, want)
		}
		if got, want := EqualServiceInputs(s1, s2), reflect.DeepEqual(s1, s2); got != want {
			t.Errorf("change %d: services equal %v, DeepEqual %v", i, got, want)
		}
	}
}
