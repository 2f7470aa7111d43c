package ruleset_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// FuzzRender feeds arbitrary names and values through Compose and Render. Either the object
// is refused, or the ruleset is well-formed: every line is one command of the agent's table
// with no user-controlled syntax, and (as root) nft --check accepts it.
func FuzzRender(f *testing.F) {
	f.Add("web", "default", "10.0.0.0/8", "10.1.0.0/16", "TCP", int32(443), int32(0), "185.1.2.3", "1.2.3.0/24", int32(30080))
	f.Add("a\"; flush ruleset; #", "ns\nadd table ip x", "0.0.0.0/0", "", "udp", int32(1), int32(65535), "::1", "::/0", int32(0))
	f.Add("} ; add rule inet firewall forward accept", "x/y", "fd00::/8", "fd00:1::/64", "sctp", int32(80), int32(70), "2001:db8::1", "fd00::/8", int32(1))
	f.Add(strings.Repeat("long-name.", 40), "", "1.2.3.4", "1.2.3.4/32", "", int32(0), int32(0), "", "", int32(0))
	f.Add("\x00\x7f\u2028", "ü", "10.0.0.1/8", "11.0.0.0/8", "icmp", int32(-1), int32(99999), "10.0.0.1%eth0", "10.0.0.0/33", int32(70000))
	f.Add("goto", "accept", "::ffff:1.2.3.4/128", "", "TCP", int32(22), int32(22), "::ffff:10.0.0.1", "::ffff:0:0/96", int32(30000))

	checkNFT := os.Geteuid() == 0 && hasBinaries("nft", "unshare")
	f.Fuzz(func(t *testing.T, name, namespace, cidr, except, proto string, port, endPort int32, lbIP, sourceRange string, nodePort int32) {
		pp := model.PolicyPort{Protocol: &proto}
		if port != 0 {
			pp.Port = &port
		}
		if endPort != 0 {
			pp.EndPort = &endPort
		}
		block := model.IPBlock{CIDR: cidr}
		if except != "" {
			block.Except = []string{except}
		}
		policy := model.PolicyInput{
			Key: model.ObjectKey{Source: "shoot", Namespace: namespace, Name: name},
			Spec: model.PolicySpec{
				Description: name,
				Egress:      []model.EgressRule{{Ports: []model.PolicyPort{pp}, To: []model.IPBlock{block}}},
				Ingress:     []model.IngressRule{{Ports: []model.PolicyPort{pp}, From: []model.IPBlock{block}}},
			},
		}
		svc := model.ServiceInput{
			Key: model.ObjectKey{Source: "shoot", Namespace: namespace, Name: name},
			Spec: model.ServiceSpec{Name: name, Namespace: namespace, IPs: []string{lbIP},
				Ports:        []model.ServicePort{{Name: name, Protocol: proto, Port: port, NodePort: nodePort}},
				SourceRanges: []string{sourceRange}},
		}
		nodePortSvc := svc
		nodePortSvc.Key.Name += "-np"
		nodePortSvc.Spec.Type = "NodePort"

		snap, verdicts := model.Compose(fixture.Firewall(), append(fixture.Policies(), policy), append(fixture.Services(), svc, nodePortSvc))
		for _, v := range verdicts {
			if !v.Accepted && v.Message == "" {
				t.Fatalf("%s refused without a reason", v.Key)
			}
		}
		out := text(ruleset.Render(snap, ruleset.Options{}))
		assertWellFormed(t, out)
		if checkNFT {
			if err := nft.CheckInScratchNetns(context.Background(), out); err != nil {
				t.Fatalf("accepted objects produced a ruleset nft rejects: %v", err)
			}
		}
	})
}

// assertWellFormed checks that every line is a single command on the agent's table and that
// quotes, comment signs and command separators appear only where the renderer puts them.
func assertWellFormed(t *testing.T, out string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(line, " inet firewall") {
			t.Fatalf("line outside the agent's table: %q", line)
		}
		if strings.ContainsAny(line, "#\\\x00") {
			t.Fatalf("forbidden character in %q", line)
		}
		isDefinition := strings.HasPrefix(line, "add table ") || strings.HasPrefix(line, "add chain ") ||
			strings.HasPrefix(line, "add set ") || strings.HasPrefix(line, "add map ") || strings.HasPrefix(line, "add counter ")
		if strings.Contains(line, ";") && !isDefinition {
			t.Fatalf("command separator in %q", line)
		}
		// Quoted strings: comments (sanitized), log prefixes and interface names.
		if n := strings.Count(line, `"`); n%2 != 0 || n > 4 {
			t.Fatalf("unbalanced or unexpected quotes in %q", line)
		}
	}
}

func hasBinaries(names ...string) bool {
	for _, n := range names {
		if _, err := lookPath(n); err != nil {
			return false
		}
	}
	return true
}
