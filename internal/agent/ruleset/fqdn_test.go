package ruleset_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

func p32(v int32) *int32   { return &v }
func str(s string) *string { return &s }

// fqdnSnapshot is the fixture plus a policy with two toFQDNs rules of different ports.
func fqdnSnapshot(t testing.TB) model.Snapshot {
	inputs := append(fixture.Policies(), model.PolicyInput{
		Key: model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: "allow-github"},
		Spec: model.PolicySpec{Egress: []model.EgressRule{
			{Ports: []model.PolicyPort{{Port: p32(443)}}, ToFQDNs: []model.FQDNSelector{{MatchName: "api.github.com"}, {MatchPattern: "*.githubusercontent.com"}}},
			{Ports: []model.PolicyPort{{Protocol: str("UDP")}, {Port: p32(8000), EndPort: p32(8080)}}, ToFQDNs: []model.FQDNSelector{{MatchName: "stun.example.com"}}},
		}},
	})
	fw := fixture.Firewall()
	policies, verdicts := model.ComposePolicies(fw, inputs)
	for _, v := range verdicts {
		if !v.Accepted {
			t.Fatalf("%s refused: %s", v.Key, v.Message)
		}
	}
	return model.Snapshot{Firewall: fw, Policies: policies}
}

// The golden file is also loaded by TestGoldenAcceptedByNFT (nft --check).
func TestGoldenFQDN(t *testing.T) {
	got := text(ruleset.Render(fqdnSnapshot(t), ruleset.Options{DNSProxyPort: 53}))
	path := filepath.Join("testdata", "fqdn.nft")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("fqdn ruleset differs from %s (go test ./internal/agent/ruleset -update)", path)
	}
}

func TestFQDNObjects(t *testing.T) {
	snap := fqdnSnapshot(t)
	r := ruleset.Render(snap, ruleset.Options{DNSProxyPort: 53})
	targets := ruleset.FQDNTargets(snap.Policies)
	if len(targets) != 2 || targets[0].SetV4 == targets[1].SetV4 || !strings.HasSuffix(targets[0].SetV6, "_v6") {
		t.Fatalf("targets: %+v", targets)
	}
	var timeoutSets []string
	for _, s := range r.Sets {
		if s.Timeout {
			timeoutSets = append(timeoutSets, s.Name)
			if len(s.Elements) != 0 || s.Interval || s.Map {
				t.Errorf("set %s: elements belong to the DNS proxy: %+v", s.Name, s)
			}
		}
	}
	for _, tg := range targets {
		if !slices.Contains(timeoutSets, tg.SetV4) || !slices.Contains(timeoutSets, tg.SetV6) {
			t.Errorf("sets of %+v missing in %v", tg, timeoutSets)
		}
	}
	fwd := r.Chains[0]
	if fwd.Rules[len(fwd.Rules)-2] != "jump "+ruleset.ChainFQDNEgress || !strings.HasPrefix(fwd.Rules[len(fwd.Rules)-1], "counter name drop_total") {
		t.Errorf("forward chain: %v", fwd.Rules)
	}
	var names []string
	for _, c := range r.Chains {
		names = append(names, c.Name)
	}
	if !slices.Contains(names, ruleset.ChainDNSRedirect) {
		t.Errorf("no DNS redirect with a proxy port: %v", names)
	}

	// Without a proxy port no DNS is redirected; without toFQDNs rules nothing FQDN exists.
	r = ruleset.Render(snap, ruleset.Options{})
	for _, c := range r.Chains {
		if c.Name == ruleset.ChainDNSRedirect {
			t.Error("redirect without a proxy port")
		}
	}
	plain := ruleset.Render(fixture.Snapshot(), ruleset.Options{DNSProxyPort: 53})
	for _, c := range plain.Chains {
		if c.Name == ruleset.ChainFQDNEgress || c.Name == ruleset.ChainDNSRedirect {
			t.Errorf("%s without toFQDNs rules", c.Name)
		}
	}
	if got := plain.Stats().ForwardRules; got != 17 {
		t.Errorf("forward rules without toFQDNs: %d", got)
	}
}

// The caching renderer carries the FQDN part like Render.
func TestRendererFQDNEqualsRender(t *testing.T) {
	snap := fqdnSnapshot(t)
	opts := ruleset.Options{DNSProxyPort: 5353}
	r := ruleset.NewRenderer(opts)
	first := r.Render(snap)
	again := r.Render(snap) // cached policy part
	want := ruleset.Render(snap, opts)
	if !first.Equal(want) || !again.Equal(want) {
		t.Error("renderer differs from Render with toFQDNs rules")
	}
}
