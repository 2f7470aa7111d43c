package netns

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Seed 000 (metal-stack v0.6.0): "Without further configuration, traffic to port 443 and 53
// is still allowed on both firewalls." With only the konnectivity policy deployed, the
// nodes reach TCP 443 and TCP/UDP 53 (IPv4 and IPv6), nothing else, and nothing comes in;
// nftables.defaultEgress: false switches it off.
func TestSeedDefaultEgress(t *testing.T) {
	s := newSingle(t)
	s.agent.Nftables = "" // the default, as a user gets it
	konnectivity := staticFirewall + `
    cwnp:
      egress:
      - ports: [{protocol: TCP, port: 8132}]
        to: [{cidr: 0.0.0.0/0}]
`
	s.agent.MustApply(konnectivity)
	s.Expect(
		pass(s.node, "tcp", outside4+":8132"),
		pass(s.node, "tcp", outside4+":443"),
		pass(s.node, "tcp", outside4+":53"),
		pass(s.node, "udp", outside4+":53"),
		pass(s.node, "tcp", "["+outside6+"]:443"),
		pass(s.node, "tcp", "["+outside6+"]:53"),
		pass(s.node, "udp", "["+outside6+"]:53"),
		drop(s.node, "tcp", outside4+":8080"),
		drop(s.node, "udp", outside4+":123"), // NTP is not part of the default (model.DefaultEgress)
		drop(s.node, "udp", outside4+":5353"),
		drop(s.outside, "tcp", node4+":443"), // egress only
		drop(s.outside, "tcp", "["+node6+"]:53"),
	)
	// The rule file, the dry-run diff and the counters name the rule that allows it.
	data, err := os.ReadFile(s.agent.RuleFile())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "-default-egress") || !strings.Contains(string(data), "metal-stack v0.6.0") {
		t.Errorf("rule file does not show the default egress:\n%s", data)
	}
	if s.Counter(s.fw, defaultEgressCounter(t, s)) == 0 {
		t.Error("the default egress counter counted nothing")
	}
	out, err := s.agent.Once(konnectivity, "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "# default:default-egress: default egress TCP 443, TCP and UDP 53") {
		t.Errorf("dry run does not name the default egress:\n%s", out)
	}

	s.agent.Nftables = "  defaultEgress: false\n"
	out, err = s.agent.Once(konnectivity, "--dry-run")
	if err != nil || !strings.Contains(out, "-default-egress") || !strings.Contains(out, "\n-") {
		t.Errorf("dry run does not show the default egress going away: %v\n%s", err, out)
	}
	s.agent.MustApply(konnectivity)
	s.Expect(
		pass(s.node, "tcp", outside4+":8132"),
		drop(s.node, "tcp", outside4+":443"),
		drop(s.node, "udp", outside4+":53"),
		drop(s.node, "tcp", "["+outside6+"]:443"),
		drop(s.node, "udp", "["+outside6+"]:53"),
	)
}

func defaultEgressCounter(t *testing.T, s *single) string {
	t.Helper()
	out := s.In(s.fw, "nft", "list", "counters", "table", "inet", "firewall")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "counter" && strings.HasSuffix(f[1], "-default-egress") {
			return f[1]
		}
	}
	t.Fatalf("no default egress counter in:\n%s", out)
	return ""
}

// A Service's load-balancer IP must lie in a network of the firewall: the cluster prefixes,
// a private or DMZ network, or an external network (metal-stack allocates LoadBalancer IPs
// from the internet network). An address no network holds is refused with the reason (IPv4
// and IPv6). An accepted IP in the external network (here the outside host's own address)
// still opens nothing outwards: the service rule matches only sources outside the cluster.
// An ingress rule without peers opens the cluster side only, never the same port outwards.
func TestServiceIPsOnlyFromTheClusterSide(t *testing.T) {
	s := newSingle(t)
	out, err := s.agent.Once(staticFirewall + `      - {networkID: internet, networkType: external, vrf: 3, prefixes: [10.99.0.0/24, "fd99::/64"]}
    cwnp:
      ingress:
      - ports: [{protocol: TCP, port: 8443}]
    services:
    - name: nowhere4
      namespace: evil
      ips: [203.0.113.7]
      ports: [{protocol: TCP, port: 8080}]
    - name: nowhere6
      namespace: evil
      ips: ["2001:db8:ff::7"]
      ports: [{protocol: TCP, port: 8080}]
    - name: external4
      namespace: evil
      ips: [10.99.0.2]
      ports: [{protocol: TCP, port: 8080}]
    - name: external6
      namespace: evil
      ips: ["fd99::2"]
      ports: [{protocol: TCP, port: 8080}]
    - name: web
      namespace: shop
      ips: [10.2.0.10, "fd02::10"]
      ports: [{protocol: TCP, port: 6443}]
`)
	if err != nil {
		t.Fatalf("agent: %v\n%s", err, out)
	}
	for _, name := range []string{"evil/nowhere4", "evil/nowhere6"} {
		if !strings.Contains(out, name) {
			t.Errorf("%s not reported as refused:\n%s", name, out)
		}
	}
	for _, name := range []string{"evil/external4", "evil/external6"} {
		if strings.Contains(out, name) {
			t.Errorf("%s (external network) reported as refused:\n%s", name, out)
		}
	}
	if strings.Count(out, "is in no network of the firewall") != 2 {
		t.Errorf("reason missing:\n%s", out)
	}
	if rules := s.In(s.fw, "nft", "list", "map", "inet", "firewall", "services_v4"); !strings.Contains(rules, "10.99.0.2") {
		t.Errorf("the external network's load-balancer IP is not in the services map:\n%s", rules)
	}
	s.Expect(
		// the external-network IPs are accepted, yet the nodes cannot reach them: a service
		// rule never opens egress
		drop(s.node, "tcp", outside4+":8080"),
		drop(s.node, "tcp", "["+outside6+"]:8080"),
		// the ingress rule without peers: every source, towards the cluster only
		pass(s.outside, "tcp", node4+":8443"),
		pass(s.outside, "tcp", "["+node6+"]:8443"),
		drop(s.node, "tcp", outside4+":8443"),
		drop(s.node, "tcp", "["+outside6+"]:8443"),
		// the service on the cluster side works, and only from outside the cluster
		pass(s.outside, "tcp", "10.2.0.10:6443"),
		pass(s.outside, "tcp", "[fd02::10]:6443"),
	)
}

// A rule without ports matches every protocol and port, a rule without peers every address
// (the CWNP API's documentation); allowedNetworks still caps both.
func TestRulesWithoutPortsOrPeers(t *testing.T) {
	s := newSingle(t)
	s.agent.MustApply(staticFirewall + `
    cwnp:
      egress:
      - to: [{cidr: 10.99.0.2/32}, {cidr: "fd99::2/128"}]
      - ports: [{port: 6443}]
      ingress:
      - from: [{cidr: 10.99.0.3/32}, {cidr: "fd99::3/128"}]
`)
	s.Expect(
		pass(s.node, "tcp", outside4+":8080"),
		pass(s.node, "udp", outside4+":5353"),
		pass(s.node, "udp", outside4+":123"),
		pass(s.node, "tcp", "["+outside6+"]:8080"),
		pass(s.node, "udp", "["+outside6+"]:5353"),
		drop(s.node, "tcp", outside4b+":8080"), // not listed
		drop(s.node, "tcp", "["+outside6b+"]:8080"),
		pass(s.node, "tcp", outside4b+":6443"), // no to: every address, TCP by default
		pass(s.node, "tcp", "["+outside6b+"]:6443"),
		drop(s.node, "udp", outside4b+":5353"),
		passFrom(s.outside, outside4b, "tcp", node4+":22"),
		passFrom(s.outside, outside4b, "tcp", node4+":8080"),
		passFrom(s.outside, outside6b, "tcp", "["+node6+"]:8080"),
		dropFrom(s.outside, outside4, "tcp", node4+":8080"),
		dropFrom(s.outside, outside6, "tcp", "["+node6+"]:8080"),
		drop(s.node, "tcp", outside4b+":22"), // ingress never opens egress
	)

	// allowedNetworks: "every address" becomes every allowed network.
	s.agent.MustApply(strings.Replace(staticFirewall, "      firewallNetworks:", `      allowedNetworks:
        egress: [10.99.0.2/32, "fd99::2/128"]
      firewallNetworks:`, 1) + `
    cwnp:
      egress:
      - ports: [{port: 8080}]
`)
	s.Expect(
		pass(s.node, "tcp", outside4+":8080"),
		pass(s.node, "tcp", "["+outside6+"]:8080"),
		drop(s.node, "tcp", outside4b+":8080"),
		drop(s.node, "tcp", "["+outside6b+"]:8080"),
	)
}

// The same Service listed twice: identical copies are merged, differing copies are refused;
// either way the rest applies, --once succeeds and never claims the previous ruleset was kept.
func TestDuplicateObjects(t *testing.T) {
	s := newSingle(t)
	svc := func(port string) string {
		return `
    - name: web
      namespace: shop
      ips: [10.2.0.10, "fd02::10"]
      ports: [{protocol: TCP, port: ` + port + `}]`
	}
	base := staticFirewall + `
    cwnp:
      egress:
      - to: [{cidr: 10.99.0.0/24}, {cidr: "fd99::/64"}]
        ports: [{protocol: TCP, port: 443}]
    services:` + `
    - name: other
      namespace: shop
      ips: [10.2.0.1]
      ports: [{protocol: TCP, port: 22}]`
	out, err := s.agent.Once(base + svc("6443") + svc("6443") + "\n")
	if err != nil || strings.Contains(out, "kept") {
		t.Fatalf("identical copies: %v\n%s", err, out)
	}
	s.Expect(
		pass(s.outside, "tcp", "10.2.0.10:6443"),
		pass(s.outside, "tcp", "[fd02::10]:6443"),
		pass(s.outside, "tcp", "10.2.0.1:22"),
		pass(s.node, "tcp", outside4+":443"),
	)
	out, err = s.agent.Once(base + svc("6443") + svc("8080") + "\n")
	if err != nil || strings.Contains(out, "kept") {
		t.Fatalf("differing copies: %v\n%s", err, out)
	}
	if !strings.Contains(out, "listed 2 times with different specs") {
		t.Errorf("refusal not reported:\n%s", out)
	}
	s.Expect(
		drop(s.outside, "tcp", "10.2.0.10:6443"),
		drop(s.outside, "tcp", "10.2.0.10:8080"),
		drop(s.outside, "tcp", "[fd02::10]:8080"),
		pass(s.outside, "tcp", "10.2.0.1:22"),
		pass(s.node, "tcp", outside4+":443"),
		pass(s.node, "tcp", "["+outside6+"]:443"),
	)
}

// Every kind of bad input is refused (or survives on its own) while the rest still applies,
// checked with real packets: a policy to the outside on TCP 443 and a service on the DMZ
// address 10.2.0.1:22 are the rest; each case adds one bad thing.
func TestRobustness(t *testing.T) {
	s := newSingle(t)
	goodPolicy := `
    cwnp:
      egress:
      - to: [{cidr: 10.99.0.0/24}, {cidr: "fd99::/64"}]
        ports: [{protocol: TCP, port: 443}]`
	goodService := `
    - name: good
      namespace: x
      ips: [10.2.0.1, "fd02::10"]
      ports: [{protocol: TCP, port: 22}]`
	for _, c := range []struct {
		name     string
		firewall string // lines under sources.static.firewall
		policy   string // replaces the good policy
		services string // more services
		log      string // what the agent says about it
		extra    []Probe
	}{
		{name: "bad CIDR", policy: `
    cwnp:
      egress:
      - to: [{cidr: 10.99.0.0/33}]
        ports: [{protocol: TCP, port: 8080}]`, log: `is not a CIDR`,
			extra: []Probe{drop(s.node, "tcp", outside4+":8080"), drop(s.node, "tcp", outside4+":443")}},
		{name: "port 0", services: `
    - name: zero
      namespace: x
      ips: [10.2.0.2]
      ports: [{protocol: TCP, port: 0}]`, log: `0 is not between 1 and 65535`,
			extra: []Probe{drop(s.outside, "tcp", "10.2.0.2:80")}},
		{name: "port 70000", services: `
    - name: big
      namespace: x
      ips: [10.2.0.2]
      ports: [{protocol: TCP, port: 70000}]`, log: `70000 is not between 1 and 65535`,
			extra: []Probe{drop(s.outside, "tcp", "10.2.0.2:8080")}},
		{name: "endPort 70000", policy: `
    cwnp:
      egress:
      - to: [{cidr: 10.99.0.0/24}]
        ports: [{protocol: TCP, port: 8000, endPort: 70000}]`, log: `70000 is not between 1 and 65535`,
			extra: []Probe{drop(s.node, "tcp", outside4+":8080"), drop(s.node, "tcp", outside4+":443")}},
		{name: "hostile names survive sanitized", services: `
    - name: "web\"; flush ruleset; add table inet x #"
      namespace: "a\nb } ; delete table inet firewall"
      ips: [10.2.0.2]
      ports: [{name: "p\"; drop #", protocol: TCP, port: 8080}]`,
			extra: []Probe{pass(s.outside, "tcp", "10.2.0.2:8080"), drop(s.outside, "tcp", "10.2.0.2:6443")}},
		{name: "hostile protocol", services: `
    - name: proto
      namespace: x
      ips: [10.2.0.2]
      ports: [{protocol: "TCP; accept", port: 8080}]`, log: `is not one of TCP, UDP, SCTP`,
			extra: []Probe{drop(s.outside, "tcp", "10.2.0.2:8080")}},
		{name: "hostile source range", services: `
    - name: ranges
      namespace: x
      ips: [10.2.0.2]
      ports: [{protocol: TCP, port: 8080}]
      sourceRanges: ["0.0.0.0/0 } accept ; #"]`, log: `is not a CIDR`,
			extra: []Probe{drop(s.outside, "tcp", "10.2.0.2:8080")}},
		{name: "hostile IP", services: `
    - name: ip
      namespace: x
      ips: ["10.2.0.2 . tcp . 8080 : accept"]
      ports: [{protocol: TCP, port: 8080}]`, log: `is not an IP address`,
			extra: []Probe{drop(s.outside, "tcp", "10.2.0.2:8080")}},
		{name: "hostile except and description", policy: `
    cwnp:
      description: "\"; flush ruleset #"
      egress:
      - to: [{cidr: 10.99.0.0/24, except: ["10.99.0.3/32 } accept"]}]
        ports: [{protocol: TCP, port: 8080}]`, log: `is not a CIDR`,
			extra: []Probe{drop(s.node, "tcp", outside4+":8080"), drop(s.node, "tcp", outside4+":443")}},
		{name: "hostile FQDN", policy: `
    cwnp:
      egress:
      - toFQDNs: [{matchName: "x\"; flush ruleset"}]
        ports: [{protocol: TCP, port: 8080}]
      - to: [{cidr: 10.99.0.0/24}, {cidr: "fd99::/64"}]
        ports: [{protocol: TCP, port: 443}]`, log: `egress[0].toFQDNs[0]: matchName:`,
			// toFQDNs is enforced: a name that cannot be one refuses the policy
			extra: []Probe{drop(s.node, "tcp", outside4+":8080")}},
		{name: "hostile network IDs", firewall: `
      rateLimits: [{networkID: "x\"; flush ruleset #", rate: 10}]
      egressRules: [{networkID: "y } ; #", ips: [10.99.0.1]}]`, log: `is not attached to the firewall`},
		{name: "hostile network prefixes and SNAT IPs", firewall: `
      firewallNetworks:
      - {networkID: dmz, networkType: privatesecondaryshared, vrf: 2, prefixes: [10.2.0.0/24, "fd02::/64", "10.3.0.0/16 } accept ; #"]}
      egressRules: [{networkID: dmz, ips: ["10.2.0.1\"; drop"]}]`, log: `is not a CIDR; skipped`},
		{name: "hostile service type", services: `
    - name: type
      namespace: x
      type: "LoadBalancer; accept"
      ips: [10.2.0.2]
      ports: [{protocol: TCP, port: 8080}]`,
			extra: []Probe{drop(s.outside, "tcp", "10.2.0.2:8080")}},
		{name: "duplicate objects", services: `
    - name: good
      namespace: x
      ips: [10.2.0.1]
      ports: [{protocol: TCP, port: 8080}]`, log: `listed 2 times with different specs`,
			extra: []Probe{drop(s.outside, "tcp", "10.2.0.1:8080")}},
		{name: "rate limit the kernel refuses", firewall: `
      rateLimits: [{networkID: internet, rate: 4294967295}]
      firewallNetworks:
      - {networkID: internet, networkType: external, vrf: 99, prefixes: [10.99.0.0/24]}
      - {networkID: dmz, networkType: privatesecondaryshared, vrf: 2, prefixes: [10.2.0.0/24, "fd02::/64"]}`,
			log: `rate 4294967295 MiB/s is above 17592`},
	} {
		t.Run(c.name, func(t *testing.T) {
			fw := staticFirewall
			if c.firewall != "" {
				if strings.Contains(c.firewall, "firewallNetworks") {
					fw = fw[:strings.Index(fw, "      firewallNetworks:")]
				}
				fw += strings.TrimPrefix(c.firewall, "\n") + "\n"
			}
			policy := goodPolicy
			policyRefused := c.policy != ""
			if c.policy != "" {
				policy = c.policy
			}
			config := fw + strings.TrimPrefix(policy, "\n") + "\n    services:" + goodService + c.services + "\n"
			out, err := s.agent.Once(config)
			if err != nil {
				t.Fatalf("agent --once failed: %v\n%s", err, out)
			}
			if c.log != "" && !strings.Contains(out, c.log) {
				t.Errorf("agent does not say %q:\n%s", c.log, out)
			}
			probes := []Probe{
				pass(s.outside, "tcp", "10.2.0.1:22"),
				pass(s.outside, "tcp", "[fd02::10]:22"),
			}
			if c.name == "duplicate objects" {
				probes = []Probe{drop(s.outside, "tcp", "10.2.0.1:22")} // the good service is the duplicate
			}
			if !policyRefused {
				probes = append(probes, pass(s.node, "tcp", outside4+":443"), pass(s.node, "tcp", "["+outside6+"]:443"))
			}
			s.Expect(append(probes, c.extra...)...)
			// Whatever was refused, the kernel holds the table the rule file describes.
			data, err := os.ReadFile(s.agent.RuleFile())
			if err != nil {
				t.Fatal(err)
			}
			check := exec.Command("ip", "netns", "exec", s.fw, "nft", "--check", "-f", "-")
			check.Stdin = strings.NewReader(string(data))
			if msg, err := check.CombinedOutput(); err != nil {
				t.Errorf("rule file does not load: %v\n%s", err, msg)
			}
			for _, other := range []string{"table inet x"} {
				if strings.Contains(s.In(s.fw, "nft", "list", "tables"), other) {
					t.Errorf("hostile text created %s", other)
				}
			}
		})
	}
}
