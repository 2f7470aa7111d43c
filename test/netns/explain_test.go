package netns

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
	"github.com/palisade-fw/palisade/internal/agent/verdict"
)

// explainLab is the single-firewall topology (see single) without the agent binary: the test
// composes, renders and applies the ruleset through the agent's own kernel path, so it can
// hold several policies and fill the toFQDNs sets as the DNS proxy does.
type explainLab struct {
	*Lab
	outside, fw, node string
	kernel            *nft.Netlink
	applier           *nft.Applier
}

func newExplainLab(t *testing.T) *explainLab {
	l := NewLab(t)
	e := &explainLab{Lab: l, outside: l.NS("out"), fw: l.NS("fw"), node: l.NS("node")}
	l.Link(e.outside, "eth0", []string{outside4 + "/24", outside4b + "/24", outside6 + "/64", outside6b + "/64"},
		e.fw, "vlan99", []string{"10.99.0.1/24", "fd99::1/64"})
	l.Link(e.fw, "eth1", []string{"10.1.0.1/24", "fd01::1/64"}, e.node, "eth0", []string{node4 + "/24", node6 + "/64"})
	l.Router(e.fw)
	l.Route(e.outside, "default", "10.99.0.1")
	l.Route(e.outside, "default", "fd99::1")
	l.Route(e.node, "default", "10.1.0.1")
	l.Route(e.node, "default", "fd01::1")
	for _, lb := range []string{"10.2.0.1/32", "10.2.0.10/32", "fd02::10/128"} {
		l.Addr(e.node, "lo", lb)
	}
	l.Route(e.fw, "10.2.0.0/24", node4)
	l.Route(e.fw, "fd02::/64", node6)

	// Every flow has a listener, so that a drop is the firewall's doing. UDP answers from
	// the address asked, so UDP binds each address.
	var node, out [][2]string
	// Ports next to the rules' edges (23, 444, 8200, 8201, 54, 4999) catch an off-by-one.
	for _, p := range []string{"22", "23", "443", "8080", "8443", "30080"} {
		node = append(node, [2]string{"tcp", "[::]:" + p})
	}
	for _, a := range []string{node4, "[" + node6 + "]", "10.2.0.1", "10.2.0.10", "[fd02::10]"} {
		node = append(node, [2]string{"udp", a + ":4999"}, [2]string{"udp", a + ":5000"}, [2]string{"udp", a + ":5001"})
	}
	for _, p := range []string{"22", "443", "444", "6443", "8080", "8132", "8200", "8201"} {
		out = append(out, [2]string{"tcp", "[::]:" + p})
	}
	for _, a := range []string{outside4, outside4b, "[" + outside6 + "]", "[" + outside6b + "]"} {
		out = append(out, [2]string{"udp", a + ":53"}, [2]string{"udp", a + ":54"}, [2]string{"udp", a + ":123"}, [2]string{"udp", a + ":5353"})
	}
	l.Serve(e.node, node...)
	l.Serve(e.outside, out...)

	k, err := nft.NewNetlink(ruleset.DefaultTable, filepath.Join("/run/netns", e.fw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	e.kernel, e.applier = k, nft.New(k, nft.Options{})
	return e
}

// apply composes and renders the inputs as the agent does and applies them to the kernel.
func (e *explainLab) apply(in verdict.Inputs) {
	e.t.Helper()
	snap, _ := in.Compose()
	if _, err := e.applier.Apply(context.Background(), ruleset.Render(snap, ruleset.Options{})); err != nil {
		e.t.Fatalf("apply: %v", err)
	}
	// The DNS proxy's part: the learned addresses go into the rule's timeout sets.
	for _, target := range ruleset.FQDNTargets(snap.Policies) {
		for _, sel := range target.Rule.Selectors {
			for _, a := range in.Learned[target.Policy][sel.Selector] {
				typ := "ipv6_addr"
				if a.Is4() {
					typ = "ipv4_addr"
				}
				if err := e.kernel.AddElements(context.Background(), target.Set(a.Is4()), typ, []nft.SetElement{{Key: []string{a.String()}}}, time.Hour); err != nil {
					e.t.Fatalf("learned address %s: %v", a, err)
				}
			}
		}
	}
}

// kflow is one flow of the test: from the node (egress) or the outside (ingress).
type kflow struct {
	fromNode bool
	src      string
	proto    string
	dst      string
	port     uint16
	// want is the accepting rule ("object rule") the test expects in the first phase, "" for
	// a drop; it documents the intent, the kernel is the judge.
	want string
}

func (f kflow) flow(t *testing.T) verdict.Flow {
	proto, err := model.ParseProtocol(f.proto)
	if err != nil {
		t.Fatal(err)
	}
	return verdict.Flow{Src: netip.MustParseAddr(f.src), Dst: netip.MustParseAddr(f.dst), Protocol: proto, Port: f.port}
}

func (f kflow) ns(e *explainLab) string {
	if f.fromNode {
		return e.node
	}
	return e.outside
}

func (f kflow) hostPort() string {
	return netip.AddrPortFrom(netip.MustParseAddr(f.dst), f.port).String()
}

func shootKey(name string) model.ObjectKey {
	return model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: name}
}

func explainPolicies() []model.PolicyInput {
	port := func(proto string, p, end int32) model.PolicyPort {
		pp := model.PolicyPort{Protocol: &proto, Port: &p}
		if end != 0 {
			pp.EndPort = &end
		}
		return pp
	}
	blocks := func(cidrs ...string) []model.IPBlock {
		var out []model.IPBlock
		for _, c := range cidrs {
			cidr, except, _ := strings.Cut(c, " except ")
			b := model.IPBlock{CIDR: cidr}
			if except != "" {
				b.Except = []string{except}
			}
			out = append(out, b)
		}
		return out
	}
	return []model.PolicyInput{
		{Key: shootKey("all-to-b"), Spec: model.PolicySpec{Egress: []model.EgressRule{{To: blocks(outside4b + "/32")}}}},
		{Key: shootKey("git"), Spec: model.PolicySpec{Egress: []model.EgressRule{{
			ToFQDNs: []model.FQDNSelector{{MatchName: "git.example"}},
			Ports:   []model.PolicyPort{port("TCP", 22, 0), port("UDP", 5353, 0)},
		}}}},
		{Key: shootKey("kube-api"), Spec: model.PolicySpec{Egress: []model.EgressRule{{
			Ports: []model.PolicyPort{port("TCP", 6443, 0)}, To: blocks(outside4+"/32", "fd99::/64"),
		}}}},
		{Key: shootKey("mdns6"), Spec: model.PolicySpec{Egress: []model.EgressRule{{
			Ports: []model.PolicyPort{port("UDP", 5353, 0)}, To: blocks("fd99::/64"),
		}}}},
		{Key: shootKey("range"), Spec: model.PolicySpec{Egress: []model.EgressRule{{
			Ports: []model.PolicyPort{port("TCP", 8000, 8200)}, To: blocks("10.99.0.0/24 except "+outside4b+"/32", "fd99::/64 except "+outside6b+"/128"),
		}}}},
		{Key: shootKey("ssh-in"), Spec: model.PolicySpec{Ingress: []model.IngressRule{{
			Ports: []model.PolicyPort{port("TCP", 22, 0)}, From: blocks(outside4+"/32", outside6+"/128"),
		}}}},
		{Key: shootKey("udp-in"), Spec: model.PolicySpec{Ingress: []model.IngressRule{{
			Ports: []model.PolicyPort{port("UDP", 5000, 0)}, From: blocks("10.99.0.0/24", "fd99::/64"),
		}}}},
	}
}

func explainServices() []model.ServiceInput {
	svc := func(name string, spec model.ServiceSpec) model.ServiceInput {
		spec.Name, spec.Namespace = name, "shop"
		return model.ServiceInput{Key: model.ObjectKey{Source: "shoot", Namespace: "shop", Name: name}, Spec: spec}
	}
	return []model.ServiceInput{
		svc("web", model.ServiceSpec{IPs: []string{"10.2.0.10", "fd02::10"}, Ports: []model.ServicePort{{Protocol: "TCP", Port: 443}}}),
		svc("admin", model.ServiceSpec{IPs: []string{"10.2.0.1"}, Ports: []model.ServicePort{{Protocol: "TCP", Port: 8443}}, SourceRanges: []string{outside4 + "/32"}}),
		svc("np", model.ServiceSpec{Type: "NodePort", Ports: []model.ServicePort{{Protocol: "TCP", Port: 80, NodePort: 30080}}, SourceRanges: []string{outside4b + "/32", outside6b + "/128"}}),
	}
}

var explainFirewall = model.FirewallSpec{
	InternalPrefixes: []string{"10.0.0.0/8", "fd00::/8"},
	ClusterPrefixes:  []string{"10.1.0.0/24", "fd01::/64"},
	FirewallNetworks: []model.FirewallNetwork{
		{NetworkID: "dmz", NetworkType: "privatesecondaryshared", Vrf: 2, Prefixes: []string{"10.2.0.0/24", "fd02::/64"}},
	},
}

// The flows of the test: IPv4 and IPv6, TCP and UDP, egress and ingress, allowed and dropped.
var explainFlows = []kflow{
	// egress: the seed's default egress (TCP 443, TCP/UDP 53), policies with ports, a port
	// range with an except, a rule without ports, toFQDNs with learned addresses
	{true, node4, "tcp", outside4, 443, "default-egress egress[0]"},
	{true, node6, "tcp", outside6, 443, "default-egress egress[0]"},
	{true, node4, "udp", outside4, 53, "default-egress egress[0]"},
	{true, node6, "udp", outside6b, 53, "default-egress egress[0]"},
	{true, node4, "tcp", outside4, 8080, "cwnp/range egress[0]"},
	{true, node6, "tcp", outside6, 8132, "cwnp/range egress[0]"},
	{true, node6, "tcp", outside6b, 8080, ""}, // except
	{true, node4, "tcp", outside4b, 8080, "cwnp/all-to-b egress[0]"},
	{true, node4, "udp", outside4b, 123, "cwnp/all-to-b egress[0]"},
	{true, node4, "udp", outside4, 123, ""}, // NTP is not part of the default egress
	{true, node6, "udp", outside6, 5353, "cwnp/mdns6 egress[0]"},
	{true, node4, "udp", outside4, 5353, "cwnp/git egress[0]"}, // learned for git.example
	{true, node4, "tcp", outside4, 6443, "cwnp/kube-api egress[0]"},
	{true, node6, "tcp", outside6b, 6443, "cwnp/kube-api egress[0]"},
	{true, node6, "tcp", outside6, 6443, "cwnp/kube-api egress[0]"},
	{true, node4, "tcp", outside4, 22, "cwnp/git egress[0]"},
	{true, node6, "tcp", outside6b, 22, "cwnp/git egress[0]"},
	{true, node6, "tcp", outside6, 22, ""}, // not learned
	{true, node6, "udp", outside6, 123, ""},
	// ingress: policies towards the cluster and a load-balancer IP, services, node ports
	{false, outside4, "tcp", node4, 22, "cwnp/ssh-in ingress[0]"},
	{false, outside4b, "tcp", node4, 22, ""},
	{false, outside6, "tcp", node6, 22, "cwnp/ssh-in ingress[0]"},
	{false, outside6b, "tcp", node6, 22, ""},
	{false, outside4, "tcp", "10.2.0.10", 22, "cwnp/ssh-in ingress[0]"},
	{false, outside4b, "udp", node4, 5000, "cwnp/udp-in ingress[0]"},
	{false, outside6, "udp", node6, 5000, "cwnp/udp-in ingress[0]"},
	{false, outside4, "udp", node4, 5001, ""},
	{false, outside6, "udp", "fd02::10", 5001, ""},
	{false, outside4, "udp", "10.2.0.10", 5000, "cwnp/udp-in ingress[0]"},
	{false, outside4, "tcp", node4, 8080, ""},
	{false, outside4b, "tcp", "10.2.0.10", 443, "service/shop/web port 443/tcp"},
	{false, outside6b, "tcp", "fd02::10", 443, "service/shop/web port 443/tcp"},
	{false, outside4, "tcp", "10.2.0.10", 8080, ""},
	{false, outside4, "tcp", "10.2.0.1", 8443, "service/shop/admin port 8443/tcp"},
	{false, outside4b, "tcp", "10.2.0.1", 8443, ""}, // outside the source range
	{false, outside4b, "tcp", node4, 30080, "service/shop/np node port 30080/tcp"},
	{false, outside6b, "tcp", node6, 30080, "service/shop/np node port 30080/tcp"},
	{false, outside4, "tcp", node4, 30080, ""},
}

// explain's verdict equals what the kernel does with the agent's ruleset, flow by flow: a flow
// the verdict allows connects and the named rule's counter counts it; a flow it drops gets no
// answer. The second phase caps the same objects with allowedNetworks (the default egress is
// narrowed, the service without source ranges and policies outside the cap are refused).
func TestExplainAgreesWithTheKernel(t *testing.T) {
	e := newExplainLab(t)
	learned := verdict.Learned{shootKey("git"): {"git.example": {netip.MustParseAddr(outside4), netip.MustParseAddr(outside6b)}}}
	in := verdict.Inputs{Firewall: model.ParseFirewall(explainFirewall), Policies: explainPolicies(), Services: explainServices(),
		DefaultEgress: true, Learned: learned}
	checkCoverage(t, in)

	e.apply(in)
	got := e.agree(t, in, explainFlows)
	for i, f := range explainFlows {
		if got[i] != f.want {
			t.Errorf("flow %s %s: explain says %q, the test expects %q", f.proto, f.flowString(), got[i], f.want)
		}
	}

	capped := explainFirewall
	capped.AllowedNetworks = model.AllowedNetworks{Egress: []string{outside4 + "/32", "fd99::/64"}, Ingress: []string{outside4 + "/32", outside6 + "/128"}}
	in.Firewall = model.ParseFirewall(capped)
	e.apply(in)
	gotCapped := e.agree(t, in, explainFlows)
	changed := 0
	for i := range got {
		if got[i] != gotCapped[i] {
			changed++
		}
	}
	if changed < 5 {
		t.Errorf("allowedNetworks changed only %d verdicts; the capped phase tests little", changed)
	}
}

// Beyond the chosen flows: every source, destination and port of the topology, plain and
// capped. The kernel judges each one; nothing is expected by hand.
func TestExplainAgreesOnEveryFlow(t *testing.T) {
	e := newExplainLab(t)
	learned := verdict.Learned{shootKey("git"): {"git.example": {netip.MustParseAddr(outside4), netip.MustParseAddr(outside6b)}}}
	in := verdict.Inputs{Firewall: model.ParseFirewall(explainFirewall), Policies: explainPolicies(), Services: explainServices(),
		DefaultEgress: true, Learned: learned}
	flows := everyFlow()
	if len(flows) < 100 {
		t.Fatalf("only %d flows", len(flows))
	}
	e.apply(in)
	allowed := 0
	for _, by := range e.agree(t, in, flows) {
		if by != "" {
			allowed++
		}
	}
	if allowed < 20 || allowed > len(flows)-20 {
		t.Errorf("%d of %d flows allowed: too one-sided to test much", allowed, len(flows))
	}
	capped := explainFirewall
	capped.AllowedNetworks = model.AllowedNetworks{Egress: []string{outside4 + "/32", "fd99::/64"}, Ingress: []string{outside4 + "/32", outside6 + "/128"}}
	in.Firewall = model.ParseFirewall(capped)
	e.apply(in)
	e.agree(t, in, flows)
}

// everyFlow is the cross product of the topology: node to outside on every outside listener,
// outside to the node and its load-balancer IPs on every node listener, per family.
func everyFlow() []kflow {
	type listener struct {
		proto string
		port  uint16
	}
	outsidePorts := []listener{{"tcp", 22}, {"tcp", 443}, {"tcp", 444}, {"tcp", 6443}, {"tcp", 8080}, {"tcp", 8132}, {"tcp", 8200}, {"tcp", 8201},
		{"udp", 53}, {"udp", 54}, {"udp", 123}, {"udp", 5353}}
	nodePorts := []listener{{"tcp", 22}, {"tcp", 23}, {"tcp", 443}, {"tcp", 8080}, {"tcp", 8443}, {"tcp", 30080}, {"udp", 4999}, {"udp", 5000}, {"udp", 5001}}
	var out []kflow
	for _, fam := range []struct {
		node     string
		outsides []string
		targets  []string
	}{
		{node4, []string{outside4, outside4b}, []string{node4, "10.2.0.1", "10.2.0.10"}},
		{node6, []string{outside6, outside6b}, []string{node6, "fd02::10"}},
	} {
		for _, o := range fam.outsides {
			for _, l := range outsidePorts {
				out = append(out, kflow{fromNode: true, src: fam.node, proto: l.proto, dst: o, port: l.port})
			}
			for _, target := range fam.targets {
				for _, l := range nodePorts {
					out = append(out, kflow{src: o, proto: l.proto, dst: target, port: l.port})
				}
			}
		}
	}
	return out
}

func (f kflow) flowString() string { return f.src + " -> " + f.hostPort() }

// agree runs every flow against the kernel and compares it with the verdict; it returns the
// accepting rule per flow ("" for a drop).
func (e *explainLab) agree(t *testing.T, in verdict.Inputs, flows []kflow) []string {
	t.Helper()
	results := make([]verdict.Result, len(flows))
	by := make([]string, len(flows))
	var drops []Probe
	for i, f := range flows {
		results[i] = verdict.Explain(in, f.flow(t))
		if results[i].Allowed {
			by[i] = results[i].By.String()
		} else {
			drops = append(drops, Probe{NS: f.ns(e), Src: f.src, Proto: f.proto, Dst: f.hostPort()})
		}
	}
	// Allowed flows one by one, so that the counter of the rule's object can only have
	// counted this flow's first packet.
	for i, f := range flows {
		if !results[i].Allowed {
			continue
		}
		before := e.Counter(e.fw, results[i].By.Counter)
		if err := Connect(f.ns(e), f.src, f.proto, f.hostPort()); err != nil {
			t.Errorf("%s %s: explain says %s, the kernel dropped it: %v", f.proto, f.flowString(), results[i].Summary(), err)
			continue
		}
		if after := e.Counter(e.fw, results[i].By.Counter); after <= before {
			t.Errorf("%s %s: explain says %s, but its counter %s did not count it", f.proto, f.flowString(), results[i].Summary(), results[i].By.Counter)
		}
	}
	// Dropped flows together; each must get no answer.
	errs := make([]error, len(drops))
	done := make(chan int)
	for i, p := range drops {
		go func() {
			errs[i] = Connect(p.NS, p.Src, p.Proto, p.Dst)
			done <- i
		}()
	}
	for range drops {
		<-done
	}
	d := 0
	for i, f := range flows {
		if results[i].Allowed {
			continue
		}
		if errs[d] == nil {
			t.Errorf("%s %s: explain says %q, the kernel let it through", f.proto, f.flowString(), results[i].Summary())
		}
		d++
	}
	return by
}

// checkCoverage keeps the flow list honest: at least 30 flows, and every combination of
// family, protocol, direction and verdict.
func checkCoverage(t *testing.T, in verdict.Inputs) {
	t.Helper()
	if len(explainFlows) < 30 {
		t.Fatalf("%d flows; the acceptance asks for at least 30", len(explainFlows))
	}
	seen := map[string]bool{}
	for _, f := range explainFlows {
		r := verdict.Explain(in, f.flow(t))
		fam := "ipv6"
		if netip.MustParseAddr(f.dst).Is4() {
			fam = "ipv4"
		}
		seen[fmt.Sprintf("%s %s %v", fam, r.Direction, r.Allowed)] = true
		seen[fmt.Sprintf("%s %s %v", fam, f.proto, r.Allowed)] = true
	}
	for _, fam := range []string{"ipv4", "ipv6"} {
		for _, what := range []string{"egress", "ingress", "tcp", "udp"} {
			for _, allowed := range []bool{true, false} {
				if k := fmt.Sprintf("%s %s %v", fam, what, allowed); !seen[k] {
					t.Errorf("no flow covers %s", k)
				}
			}
		}
	}
}
