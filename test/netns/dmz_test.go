package netns

import (
	"slices"
	"testing"
)

// A private application cluster behind its own firewall whose only external network is a
// DMZ network; a DMZ firewall joins the DMZ network and the outside (seed 000):
//
//	app node 10.1.0.10 -- app fw (SNAT to 10.50.0.2 on vlan50) -- DMZ 10.50.0.0/24
//	  -- DMZ fw -- outside 10.99.0.2 (kube-apiserver with konnectivity on TCP 8132)
//
// The application cluster reaches the outside only through the DMZ firewall, and only what
// both firewalls' policies allow.
func TestDMZChain(t *testing.T) {
	l := NewLab(t)
	outside, dmzFW, appFW, appNode := l.NS("out"), l.NS("dmzfw"), l.NS("appfw"), l.NS("appnode")
	l.Link(outside, "eth0", []string{"10.99.0.2/24"}, dmzFW, "vlan99", []string{"10.99.0.1/24"})
	l.Link(dmzFW, "eth1", []string{"10.50.0.1/24"}, appFW, "vlan50", []string{"10.50.0.2/24"})
	l.Link(appFW, "eth1", []string{"10.1.0.1/24"}, appNode, "eth0", []string{"10.1.0.10/24"})
	l.Router(dmzFW)
	l.Router(appFW)
	l.Route(outside, "default", "10.99.0.1")
	l.Route(appFW, "default", "10.50.0.1")
	l.Route(appNode, "default", "10.1.0.1")
	server := l.Serve(outside, [2]string{"tcp", "[::]:8132"}, [2]string{"tcp", "[::]:443"}, [2]string{"tcp", "[::]:9000"}, [2]string{"tcp", "[::]:9100"})

	appAgent := l.NewAgent(appFW)
	appAgent.MustApply(`
name: app-firewall
controllers:
  firewall: {source: static}
  cwnp: {source: static}
sources:
  static:
    firewall:
      clusterPrefixes: [10.1.0.0/24]
      firewallNetworks:
      - {networkID: dmz, networkType: privatesecondaryshared, vrf: 50, prefixes: [10.50.0.0/24]}
      egressRules: [{networkID: dmz, ips: [10.50.0.2]}]
    cwnp:
      egress:
      - to: [{cidr: 0.0.0.0/0}]
        ports: [{protocol: TCP, port: 8132}, {protocol: TCP, port: 443}, {protocol: TCP, port: 9000}]
`)
	dmzAgent := l.NewAgent(dmzFW)
	dmzAgent.MustApply(`
name: dmz-firewall
controllers:
  firewall: {source: static}
  cwnp: {source: static}
sources:
  static:
    firewall:
      clusterPrefixes: [10.50.0.0/24]
    cwnp:
      egress:
      - to: [{cidr: 10.99.0.0/24}]
        ports: [{protocol: TCP, port: 8132}, {protocol: TCP, port: 443}]
`)

	l.Expect(
		pass(appNode, "tcp", "10.99.0.2:8132"), // konnectivity
		pass(appNode, "tcp", "10.99.0.2:443"),
		drop(appNode, "tcp", "10.99.0.2:9000"), // allowed by the app firewall, not by the DMZ firewall
		drop(appNode, "tcp", "10.99.0.2:9100"), // allowed by neither
		drop(outside, "tcp", "10.50.0.2:8132"), // nothing comes in
	)
	// The outside only ever saw the app firewall's DMZ address: the way out is the DMZ.
	for _, peer := range server.Peers() {
		if peer != "10.50.0.2" {
			t.Errorf("outside saw a connection from %s, want only 10.50.0.2 (SNAT on the DMZ network)", peer)
		}
	}
	if !slices.Contains(server.Peers(), "10.50.0.2") {
		t.Error("outside saw no connection at all")
	}
}
