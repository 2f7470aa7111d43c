package netns

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// BenchmarkNewFlowPacketPath: the cost of the forward chain for the first packet of a flow,
// with the input (1,000 CWNPs, 10,000 CIDRs, 2,000 services) in the kernel. The node
// sends UDP datagrams, each to a new destination port (so each one is a new flow and walks the
// forward chain), through the firewall namespace; "accepted" ones match a CWNP egress map
// element (and then a policy chain), "dropped" ones match nothing and pass every rule of the
// chain (the worst case). Reported: ns per datagram, sender and forwarding together (veth
// forwards in the sender's context). Meant for comparing rulesets on the same machine.
func BenchmarkNewFlowPacketPath(b *testing.B) {
	l := NewLab(b)
	outside, fw, node := l.NS("out"), l.NS("fw"), l.NS("node")
	l.Link(outside, "eth0", []string{outside4 + "/24"}, fw, "vlan99", []string{"10.99.0.1/24"})
	l.Link(fw, "eth1", []string{"10.1.0.1/24"}, node, "eth0", []string{node4 + "/24"})
	l.Router(fw)
	l.Route(outside, "default", "10.99.0.1")
	l.Route(node, "default", "10.1.0.1")
	// Nothing listens on the outside: an accepted datagram is answered by an ICMP error
	// (related, accepted by conntrack), a dropped one by nothing.
	policies, services := fixture.Large(1000, 10000, 2000)
	port := func(p int32) *int32 { return &p }
	udp := "UDP"
	policies = append(policies, model.PolicyInput{
		Key: model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: "bench-packet-path"},
		Spec: model.PolicySpec{Egress: []model.EgressRule{{
			To:    []model.IPBlock{{CIDR: outside4 + "/32"}},
			Ports: []model.PolicyPort{{Protocol: &udp, Port: port(20000), EndPort: port(29999)}},
		}}},
	})
	snap, _ := model.Compose(fixture.Firewall(), policies, services)
	k, err := nft.NewNetlink(ruleset.DefaultTable, filepath.Join("/run/netns", fw))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = k.Close() })
	rs := ruleset.Render(snap, ruleset.Options{})
	if _, err := nft.New(k, nft.Options{}).Apply(context.Background(), rs); err != nil {
		b.Fatal(err)
	}
	counter := ruleset.PolicyCounter(policies[len(policies)-1].Key)

	for _, c := range []struct {
		name    string
		base    int // first destination port; 10,000 ports in a row
		counter string
	}{
		{"accepted", 20000, counter},
		{"dropped", 40000, ruleset.CounterDropped},
	} {
		b.Run(c.name, func(b *testing.B) {
			before := l.Counter(fw, c.counter)
			sent := 0
			err := Do(node, func() error {
				var conn *net.UDPConn
				defer func() {
					if conn != nil {
						conn.Close()
					}
				}()
				dst := &net.UDPAddr{IP: net.ParseIP(outside4)}
				for b.Loop() {
					if sent%10000 == 0 {
						// A new socket (a new source port) every 10,000 destination
						// ports, so that every datagram is the first of its flow.
						if conn != nil {
							conn.Close()
						}
						var err error
						if conn, err = net.ListenUDP("udp4", nil); err != nil {
							return err
						}
					}
					dst.Port = c.base + sent%10000
					if _, err := conn.WriteToUDP([]byte("x"), dst); err != nil {
						return err
					}
					sent++
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			// Every datagram went through the chain: the counter saw all of them.
			deadline := time.Now().Add(30 * time.Second)
			for l.Counter(fw, c.counter)-before < uint64(sent) {
				if time.Now().After(deadline) {
					b.Fatalf("counter %s saw %d of %d datagrams", c.counter, l.Counter(fw, c.counter)-before, sent)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
