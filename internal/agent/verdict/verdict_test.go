package verdict

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/model"
)

func ptr[T any](v T) *T { return &v }

func key(name string) model.ObjectKey {
	return model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: name}
}

func tcp(port int32) model.PolicyPort { return model.PolicyPort{Port: ptr(port)} }
func udp(port int32) model.PolicyPort { return model.PolicyPort{Protocol: ptr("UDP"), Port: ptr(port)} }

var testFirewall = model.FirewallSpec{
	ClusterPrefixes: []string{"10.1.0.0/24", "fd01::/64"},
	FirewallNetworks: []model.FirewallNetwork{
		{NetworkID: "dmz", NetworkType: "privatesecondaryshared", Vrf: 2, Prefixes: []string{"10.2.0.0/24", "fd02::/64"}},
		{NetworkID: "internet", NetworkType: "external", Vrf: 3, Prefixes: []string{"185.1.2.0/24"}},
	},
}

var testPolicies = []model.PolicyInput{
	{Key: key("allow-github"), Spec: model.PolicySpec{Egress: []model.EgressRule{
		{ToFQDNs: []model.FQDNSelector{{MatchPattern: "*.github.com"}}, Ports: []model.PolicyPort{tcp(22)}},
		{Ports: []model.PolicyPort{tcp(443), tcp(22)}, To: []model.IPBlock{{CIDR: "140.82.112.0/20", Except: []string{"140.82.120.0/24"}}}},
	}}},
	{Key: key("allow-https"), Spec: model.PolicySpec{Egress: []model.EgressRule{
		{Ports: []model.PolicyPort{tcp(443)}, To: []model.IPBlock{{CIDR: "140.82.0.0/24"}, {CIDR: "2001:db8:443::/48"}}},
	}}},
	{Key: key("all-to-backup"), Spec: model.PolicySpec{Egress: []model.EgressRule{
		{To: []model.IPBlock{{CIDR: "140.82.112.0/24"}, {CIDR: "192.0.2.0/24"}}},
	}}},
	{Key: key("ssh-in"), Spec: model.PolicySpec{Ingress: []model.IngressRule{
		{Ports: []model.PolicyPort{tcp(22)}, From: []model.IPBlock{{CIDR: "203.0.113.0/24"}, {CIDR: "2001:db8:1::/48"}}},
		{From: []model.IPBlock{{CIDR: "198.51.100.7/32"}}},
	}}},
	{Key: key("zz-ntp"), Spec: model.PolicySpec{Egress: []model.EgressRule{
		{Ports: []model.PolicyPort{udp(123)}, To: []model.IPBlock{{CIDR: "192.0.2.123/32"}}},
	}}},
}

var testServices = []model.ServiceInput{
	{Key: model.ObjectKey{Source: "shoot", Namespace: "shop", Name: "web"}, Spec: model.ServiceSpec{Name: "web", Namespace: "shop", IPs: []string{"185.1.2.10", "fd02::10"},
		Ports: []model.ServicePort{{Protocol: "TCP", Port: 443}}}},
	{Key: model.ObjectKey{Source: "shoot", Namespace: "shop", Name: "admin"}, Spec: model.ServiceSpec{Name: "admin", Namespace: "shop", IPs: []string{"10.2.0.20"},
		Ports: []model.ServicePort{{Protocol: "TCP", Port: 8443}}, SourceRanges: []string{"203.0.113.0/24"}}},
	{Key: model.ObjectKey{Source: "shoot", Namespace: "shop", Name: "np"}, Spec: model.ServiceSpec{Name: "np", Namespace: "shop", Type: "NodePort",
		Ports: []model.ServicePort{{Protocol: "UDP", Port: 53, NodePort: 30053}}}},
}

func flow(src, dst, pp string) Flow {
	f := Flow{Dst: netip.MustParseAddr(dst)}
	if src != "" {
		f.Src = netip.MustParseAddr(src)
	}
	var err error
	if f.Protocol, f.Port, err = ParseProtoPort(pp); err != nil {
		panic(err)
	}
	return f
}

func TestEvaluate(t *testing.T) {
	learned := Learned{key("allow-github"): {"*.github.com": {netip.MustParseAddr("140.82.200.4")}}}
	cases := []struct {
		name string
		flow Flow
		// by is "object rule" of the accepting rule, empty for a drop.
		by string
		// dir is the direction the firewall sees.
		dir Direction
		// summary is a substring of Summary().
		summary string
	}{
		{"egress by port rule", flow("10.1.0.5", "140.82.112.3", "443/tcp"), "cwnp/allow-github egress[1]", Egress, "443/tcp, 22/tcp to 140.82.112.0/20 except 140.82.120.0/24"},
		{"ports rule beats an earlier all-ports rule", flow("10.1.0.5", "140.82.112.3", "22/tcp"), "cwnp/allow-github egress[1]", Egress, ""},
		{"all-ports rule", flow("10.1.0.5", "140.82.112.3", "8080/udp"), "cwnp/all-to-backup egress[0]", Egress, "every protocol and port"},
		{"first policy by name owns an overlap", flow("10.1.0.5", "140.82.0.9", "443/tcp"), "cwnp/allow-https egress[0]", Egress, ""},
		{"any cluster source", flow("", "192.0.2.55", "9/udp"), "cwnp/all-to-backup egress[0]", Egress, ""},
		{"except", flow("10.1.0.5", "140.82.120.1", "443/tcp"), "", Egress, "dropped: no rule matches; nearest: cwnp/allow-github egress[1] allows 443/tcp, 22/tcp to 140.82.112.0/20 except 140.82.120.0/24 only"},
		{"nearest by address", flow("10.1.0.5", "140.82.1.3", "443/tcp"), "", Egress, "nearest: cwnp/allow-https egress[0] allows 443/tcp to 140.82.0.0/24, 2001:db8:443::/48 only"},
		{"nearest by port", flow("10.1.0.5", "192.0.2.123", "124/udp"), "cwnp/all-to-backup egress[0]", Egress, ""},
		{"ipv6 egress", flow("fd01::5", "2001:db8:443::1", "443/tcp"), "cwnp/allow-https egress[0]", Egress, ""},
		{"ipv6 egress wrong proto", flow("fd01::5", "2001:db8:443::1", "443/udp"), "", Egress, "nearest: cwnp/allow-https egress[0]"},
		{"fqdn learned", flow("10.1.0.5", "140.82.200.4", "22/tcp"), "cwnp/allow-github egress[0]", Egress, "addresses learned for *.github.com"},
		{"fqdn learned, other port", flow("10.1.0.5", "140.82.200.4", "443/tcp"), "", Egress, "dropped"},
		{"fqdn not learned", flow("10.1.0.5", "140.82.200.5", "22/tcp"), "", Egress, "dropped"},
		{"ingress by port rule", flow("203.0.113.9", "10.1.0.10", "22/tcp"), "cwnp/ssh-in ingress[0]", Ingress, ""},
		{"ingress v6", flow("2001:db8:1::9", "fd01::10", "22/tcp"), "cwnp/ssh-in ingress[0]", Ingress, ""},
		{"ingress all ports", flow("198.51.100.7", "10.1.0.10", "5432/tcp"), "cwnp/ssh-in ingress[1]", Ingress, ""},
		{"ingress from elsewhere", flow("198.51.100.8", "10.1.0.10", "22/tcp"), "", Ingress, "nearest: cwnp/ssh-in ingress[1] allows every protocol and port from 198.51.100.7/32 only"},
		{"ingress from a neighbouring network", flow("203.0.112.1", "10.1.0.10", "22/tcp"), "", Ingress, "nearest: cwnp/ssh-in ingress[0] allows 22/tcp from 203.0.113.0/24, 2001:db8:1::/48 only"},
		{"ingress only towards the cluster", flow("203.0.113.9", "185.1.2.99", "22/tcp"), "", Ingress, "dropped"},
		{"ingress rule towards a load-balancer IP", flow("203.0.113.9", "185.1.2.10", "22/tcp"), "cwnp/ssh-in ingress[0]", Ingress, ""},
		{"service", flow("8.8.8.8", "185.1.2.10", "443/tcp"), "service/shop/web port 443/tcp", Ingress, "443/tcp to 185.1.2.10 from 0.0.0.0/0, ::/0"},
		{"service v6", flow("2001:db8:9::1", "fd02::10", "443/tcp"), "service/shop/web port 443/tcp", Ingress, ""},
		{"service wrong port", flow("8.8.8.8", "185.1.2.10", "80/tcp"), "", Ingress, "nearest: service/shop/web port 443/tcp"},
		{"service source range", flow("203.0.113.1", "10.2.0.20", "8443/tcp"), "service/shop/admin port 8443/tcp", Ingress, ""},
		{"service outside source range", flow("8.8.8.8", "10.2.0.20", "8443/tcp"), "", Ingress, "nearest: service/shop/admin port 8443/tcp allows 8443/tcp to 10.2.0.20 from 203.0.113.0/24 only"},
		{"node port", flow("8.8.8.8", "10.1.0.10", "30053/udp"), "service/shop/np node port 30053/udp", Ingress, ""},
		{"node port wrong protocol", flow("8.8.8.8", "10.1.0.10", "30053/tcp"), "", Ingress, "dropped"},
		{"no egress from outside", flow("8.8.8.8", "140.82.112.3", "443/tcp"), "", Ingress, "dropped"},
	}
	in := Inputs{Firewall: model.ParseFirewall(testFirewall), Policies: testPolicies, Services: testServices, Learned: learned}
	withDefault := in
	withDefault.DefaultEgress = true
	// The seed's default egress is a policy like any other; its key (default:default-egress)
	// sorts before every CWNP, so it owns what it allows.
	cases = append(cases, []struct {
		name    string
		flow    Flow
		by      string
		dir     Direction
		summary string
	}{
		{"default egress", flow("10.1.0.5", "8.8.8.8", "53/udp"), "default-egress egress[0]", Egress, "443/tcp, 53/tcp, 53/udp to 0.0.0.0/0, ::/0"},
		{"default egress v6", flow("fd01::5", "2001:4860::8888", "443/tcp"), "default-egress egress[0]", Egress, ""},
		{"default egress owns 443 before every policy", flow("10.1.0.5", "140.82.112.3", "443/tcp"), "default-egress egress[0]", Egress, ""},
		{"default egress: not 22", flow("10.1.0.5", "8.8.8.8", "22/tcp"), "", Egress, "nearest: default-egress egress[0] allows 443/tcp, 53/tcp, 53/udp to 0.0.0.0/0, ::/0 only"},
	}...)
	for i, c := range cases {
		in := in
		if i >= len(cases)-4 {
			in = withDefault
		}
		t.Run(c.name, func(t *testing.T) {
			res := Explain(in, c.flow)
			got := ""
			if res.By != nil {
				got = res.By.String()
			}
			if got != c.by || res.Allowed != (c.by != "") {
				t.Errorf("allowed %v by %q, want %q\n%s", res.Allowed, got, c.by, res.Summary())
			}
			if res.Direction != c.dir {
				t.Errorf("direction %s, want %s", res.Direction, c.dir)
			}
			if !strings.Contains(res.Summary(), c.summary) {
				t.Errorf("summary %q does not contain %q", res.Summary(), c.summary)
			}
		})
	}
}

// A flow "from the cluster" of a family the cluster has no prefix of starts nowhere; DNS
// while toFQDNs rules exist may be the DNS proxy's.
func TestEgressEdges(t *testing.T) {
	spec := testFirewall
	spec.ClusterPrefixes = []string{"10.1.0.0/24"}
	in := Inputs{Firewall: model.ParseFirewall(spec), Policies: testPolicies, DefaultEgress: true}
	if res := Explain(in, flow("", "2001:db8::1", "443/tcp")); res.Allowed || !strings.Contains(res.Reason, "no prefix of this address family") {
		t.Errorf("v6 from a v4-only cluster: %s", res.Summary())
	}
	res := Explain(in, flow("10.1.0.5", "8.8.8.8", "53/udp"))
	if !res.Allowed || !strings.Contains(strings.Join(res.Notes, "\n"), "DNS proxy") {
		t.Errorf("DNS with toFQDNs rules: %s %v", res.Summary(), res.Notes)
	}
}

func TestFirewallNotes(t *testing.T) {
	spec := model.FirewallSpec{DryRun: true, InternalPrefixes: []string{"not-a-cidr"}}
	res := Explain(Inputs{Firewall: model.ParseFirewall(spec)}, flow("10.1.0.5", "8.8.8.8", "443/tcp"))
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{"knows no cluster prefix", "spec.dryRun", `firewall spec: internalPrefixes[0]: "not-a-cidr" is not a CIDR; skipped`} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

// The policy's counter names the accepting rule's object, as the renderer names its chain.
func TestCounterNamesTheObject(t *testing.T) {
	in := Inputs{Firewall: model.ParseFirewall(testFirewall), Policies: testPolicies, Services: testServices}
	res := Explain(in, flow("10.1.0.5", "140.82.112.3", "443/tcp"))
	if res.By == nil || !strings.HasPrefix(res.By.Counter, "cwnp-") || !strings.HasSuffix(res.By.Counter, "-firewall/allow-github") {
		t.Fatalf("counter %+v", res.By)
	}
	res = Explain(in, flow("8.8.8.8", "185.1.2.10", "443/tcp"))
	if res.By == nil || !strings.HasPrefix(res.By.Counter, "svc-") {
		t.Fatalf("counter %+v", res.By)
	}
}

// Without the default egress (nftables.defaultEgress: false) 53/udp is dropped.
func TestDefaultEgressOff(t *testing.T) {
	in := Inputs{Firewall: model.ParseFirewall(testFirewall), Policies: testPolicies}
	if res := Explain(in, flow("10.1.0.5", "8.8.8.8", "53/udp")); res.Allowed {
		t.Fatalf("allowed without the default egress: %s", res.Summary())
	}
}

// allowedNetworks narrows a rule without peers and refuses a listed peer outside it; the
// explanation says which rule the cap kept from allowing the flow.
func TestAllowedNetworks(t *testing.T) {
	spec := testFirewall
	spec.AllowedNetworks = model.AllowedNetworks{Egress: []string{"140.82.0.0/16", "::/0"}, Ingress: []string{"203.0.113.0/24"}}
	in := Inputs{Firewall: model.ParseFirewall(spec), Policies: testPolicies, Services: testServices, DefaultEgress: true}
	cases := []struct {
		name  string
		flow  Flow
		by    string
		notes []string
	}{
		{"default egress narrowed", flow("10.1.0.5", "140.82.7.7", "443/tcp"), "default-egress egress[0]",
			[]string{"allowedNetworks.egress caps what policies and services open: 140.82.0.0/16, ::/0", "lists no peers, so it opens every address within allowedNetworks.egress"}},
		{"default egress outside the cap", flow("10.1.0.5", "8.8.8.8", "443/tcp"), "",
			[]string{"without allowedNetworks default-egress egress[0] would allow it", "the cap narrows it"}},
		{"refused policy", flow("10.1.0.5", "192.0.2.55", "80/tcp"), "",
			[]string{"without allowedNetworks cwnp/all-to-backup egress[0] would allow it", "refuses the object: egress to 192.0.2.0/24 is outside allowedNetworks.egress"}},
		{"refused service", flow("8.8.8.8", "185.1.2.10", "443/tcp"), "",
			[]string{"service/shop/web port 443/tcp would allow it", "source range 0.0.0.0/0 is outside allowedNetworks.ingress"}},
		{"service within the cap", flow("203.0.113.1", "10.2.0.20", "8443/tcp"), "service/shop/admin port 8443/tcp",
			[]string{"allowedNetworks.ingress caps"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := Explain(in, c.flow)
			got := ""
			if res.By != nil {
				got = res.By.String()
			}
			if got != c.by {
				t.Errorf("by %q, want %q: %s", got, c.by, res.Summary())
			}
			all := strings.Join(res.Notes, "\n")
			for _, n := range c.notes {
				if !strings.Contains(all, n) {
					t.Errorf("notes do not say %q:\n%s", n, all)
				}
			}
		})
	}
}

func TestParseProtoPort(t *testing.T) {
	for in, want := range map[string]string{"443/tcp": "443 tcp", "53/UDP": "53 udp", "22": "22 tcp", "9/sctp": "9 sctp"} {
		proto, port, err := ParseProtoPort(in)
		if err != nil || strings.Join([]string{itoa(port), proto.String()}, " ") != want {
			t.Errorf("%s: %v %d %v", in, proto, port, err)
		}
	}
	for _, bad := range []string{"0/tcp", "70000", "443/icmp", "x/tcp", ""} {
		if _, _, err := ParseProtoPort(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func itoa(v uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), v).String()[len("0.0.0.0:"):]
}
