package netns

import (
	"os"
	"slices"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	CleanupBinary()
	os.Exit(code)
}

// single is one firewall between an outside host and one cluster node:
//
//	outside 10.99.0.2, .3 / fd99::2, ::3  --  fw 10.99.0.1 / fd99::1
//	fw 10.1.0.1 / fd01::1  --  node 10.1.0.10 / fd01::10 (LB IPs 10.2.0.0/24, fd02::/64 on lo:
//	the DMZ network, the cluster side of the firewall)
type single struct {
	*Lab
	outside, fw, node string
	agent             *Agent
	outsideServer     *Server
	nodeServer        *Server
}

const (
	outside4  = "10.99.0.2"
	outside4b = "10.99.0.3"
	outside6  = "fd99::2"
	outside6b = "fd99::3"
	node4     = "10.1.0.10"
	node6     = "fd01::10"
)

func newSingle(t *testing.T) *single {
	l := NewLab(t)
	s := &single{Lab: l, outside: l.NS("out"), fw: l.NS("fw"), node: l.NS("node")}
	l.Link(s.outside, "eth0", []string{"10.99.0.2/24", "10.99.0.3/24", "fd99::2/64", "fd99::3/64"},
		s.fw, "vlan99", []string{"10.99.0.1/24", "fd99::1/64"})
	l.Link(s.fw, "eth1", []string{"10.1.0.1/24", "fd01::1/64"},
		s.node, "eth0", []string{"10.1.0.10/24", "fd01::10/64"})
	l.Router(s.fw)
	l.Route(s.outside, "default", "10.99.0.1")
	l.Route(s.outside, "default", "fd99::1")
	l.Route(s.node, "default", "10.1.0.1")
	l.Route(s.node, "default", "fd01::1")
	for _, lb := range []string{"10.2.0.1/32", "10.2.0.2/32", "10.2.0.10/32", "fd02::10/128"} {
		l.Addr(s.node, "lo", lb)
	}
	l.Route(s.fw, "10.2.0.0/24", node4)
	l.Route(s.fw, "fd02::/64", node6)

	var listens [][2]string
	for _, p := range []string{"22", "53", "443", "6443", "8080", "8132", "8443", "80", "30080"} {
		listens = append(listens, [2]string{"tcp", "[::]:" + p})
	}
	s.nodeServer = l.Serve(s.node, listens...)
	// UDP answers from the address asked, so bind each address (a wildcard socket may answer
	// from another address of the interface, which conntrack would not match). TCP 53 is bound
	// per address too: the DNS tests run their resolver on another address of the outside.
	outsideListens := slices.DeleteFunc(slices.Clone(listens), func(l [2]string) bool { return l[1] == "[::]:53" })
	for _, a := range []string{outside4, outside4b, "[" + outside6 + "]", "[" + outside6b + "]"} {
		outsideListens = append(outsideListens, [2]string{"tcp", a + ":53"}, [2]string{"udp", a + ":53"}, [2]string{"udp", a + ":5353"}, [2]string{"udp", a + ":123"})
	}
	s.outsideServer = l.Serve(s.outside, outsideListens...)
	s.agent = l.NewAgent(s.fw)
	// These tests check what policies and services open; the seed's default egress is
	// tested on its own (default_test.go).
	s.agent.Nftables = "  defaultEgress: false\n"
	return s
}

// staticFirewall is the firewall part shared by the single-firewall tests.
const staticFirewall = `
name: fw-test
controllers:
  firewall: {source: static}
  cwnp: {source: static}
  service: {source: static}
sources:
  static:
    firewall:
      internalPrefixes: [10.0.0.0/8, "fd00::/8"]
      clusterPrefixes: [10.1.0.0/24, "fd01::/64"]
      firewallNetworks:
      - {networkID: dmz, networkType: privatesecondaryshared, vrf: 2, prefixes: [10.2.0.0/24, "fd02::/64"]}
`

func pass(ns, proto, dst string) Probe { return Probe{NS: ns, Proto: proto, Dst: dst, Want: true} }
func drop(ns, proto, dst string) Probe { return Probe{NS: ns, Proto: proto, Dst: dst, Want: false} }
func passFrom(ns, src, proto, dst string) Probe {
	return Probe{NS: ns, Src: src, Proto: proto, Dst: dst, Want: true}
}
func dropFrom(ns, src, proto, dst string) Probe {
	return Probe{NS: ns, Src: src, Proto: proto, Dst: dst, Want: false}
}
