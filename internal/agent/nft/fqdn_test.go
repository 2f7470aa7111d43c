package nft

import (
	"context"
	"strings"
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

func fqdnPolicy(name, host string) model.PolicyInput {
	port := int32(443)
	return model.PolicyInput{Key: model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: name},
		Spec: model.PolicySpec{Egress: []model.EgressRule{{Ports: []model.PolicyPort{{Port: &port}}, ToFQDNs: []model.FQDNSelector{{MatchName: host}}}}}}
}

// The timeout sets belong to the DNS proxy: neither a delta nor a full sync (here: a new
// toFQDNs policy adds sets, which needs a full sync; then the applier forgets and resyncs)
// removes the addresses it wrote.
func TestLearnedElementsSurviveApplies(t *testing.T) {
	ctx := context.Background()
	s, iface := newScratch(t, "firewall")
	ap := New(iface, Options{})
	fw := fixture.Firewall()
	base := append(fixture.Policies(), fqdnPolicy("github", "api.github.com"))
	first := render(fw, base, fixture.Services())
	if _, err := ap.Apply(ctx, first); err != nil {
		t.Fatal(err)
	}
	targets := ruleset.FQDNTargets(mustCompose(t, fw, base))
	set4, set6 := targets[0].SetV4, targets[0].SetV6
	s.Exec(t, "nft", "add", "element", "inet", "firewall", set4, "{ 192.0.2.1 timeout 1h }")
	s.Exec(t, "nft", "add", "element", "inet", "firewall", set6, "{ 2001:db8::1 timeout 1h }")

	steps := []struct {
		name   string
		inputs []model.PolicyInput
		forget bool
	}{
		{"delta: a CIDR policy changes", append(fixture.Policies()[1:], fqdnPolicy("github", "api.github.com")), false},
		{"full: another toFQDNs policy", append(fixture.Policies(), fqdnPolicy("github", "api.github.com"), fqdnPolicy("gitlab", "gitlab.com")), false},
		{"full after forgetting", append(fixture.Policies(), fqdnPolicy("github", "api.github.com")), true},
	}
	for _, step := range steps {
		if step.forget {
			ap.Forget()
		}
		if _, err := ap.Apply(ctx, render(fw, step.inputs, fixture.Services())); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		for set, addr := range map[string]string{set4: "192.0.2.1", set6: "2001:db8::1"} {
			if out := s.Exec(t, "nft", "list", "set", "inet", "firewall", set); !strings.Contains(out, addr) {
				t.Errorf("%s: %s lost %s:\n%s", step.name, set, addr, out)
			}
		}
	}
	// A removed policy's sets go with it.
	if _, err := ap.Apply(ctx, render(fw, fixture.Policies(), fixture.Services())); err != nil {
		t.Fatal(err)
	}
	if out := s.Exec(t, "nft", "list", "sets", "inet"); strings.Contains(out, "fqdn-") {
		t.Errorf("sets of removed policies remain:\n%s", out)
	}
}

func mustCompose(t *testing.T, fw model.Firewall, in []model.PolicyInput) []model.Policy {
	t.Helper()
	ps, verdicts := model.ComposePolicies(fw, in)
	for _, v := range verdicts {
		if !v.Accepted {
			t.Fatalf("%s: %s", v.Key, v.Message)
		}
	}
	return ps
}
