package metalapi

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

// sink records what the source delivered.
type sink struct {
	mu       sync.Mutex
	firewall []model.Firewall
	policies [][]model.PolicyInput
}

func (s *sink) SetFirewall(fw model.Firewall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.firewall = append(s.firewall, fw)
}

func (s *sink) SetPolicies(p []model.PolicyInput) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies = append(s.policies, p)
}

func (s *sink) counts() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.firewall), len(s.policies)
}

// startSim allocates one firewall with rules in the simulator, served over real HTTP, and
// returns a view-only client (the agent's credentials) and the machine.
func startSim(t *testing.T) (metal.Client, *metal.FirewallResponse, *metalsim.Simulator) {
	t.Helper()
	cfg := metalsim.DefaultConfig()
	sim := metalsim.New(cfg)
	url, stop, err := sim.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	client := func(authType string) *metal.HTTPClient {
		c, err := metal.New(metal.Config{URL: url, HMACKey: cfg.HMACKeys[authType], HMACAuthType: authType, Retry: metal.RetryConfig{MaxAttempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fw, err := client(metal.AuthTypeEdit).AllocateFirewall(context.Background(), &metal.FirewallCreateRequest{
		Name: "fw-1", Hostname: "fw-1", ProjectID: metalsim.DefaultProject, PartitionID: metalsim.DefaultPartition,
		SizeID: metalsim.DefaultSize, ImageID: metalsim.DefaultImageShorthand,
		Networks: []metal.MachineAllocationNetwork{{NetworkID: metalsim.DefaultExternalNetwork}, {NetworkID: metalsim.DefaultPrivateNetwork}},
		FirewallRules: &metal.FirewallRules{
			Egress: []metal.FirewallEgressRule{
				{Protocol: "tcp", Ports: []int32{443}, To: []string{"0.0.0.0/0"}, Comment: "https"},
				{Protocol: "udp", Ports: []int32{53}, To: []string{"1.1.1.1/32"}, Comment: "dns"},
			},
			Ingress: []metal.FirewallIngressRule{
				{Protocol: "tcp", Ports: []int32{22}, From: []string{"203.0.113.0/24"}, Comment: "ssh"},
				{Protocol: "tcp", Ports: []int32{80}, From: []string{"0.0.0.0/0"}, To: []string{"185.1.2.10/32"}, Comment: "to a destination"},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return client(metal.AuthTypeView), fw, sim
}

func TestMetalSourceOverHTTP(t *testing.T) {
	client, fw, _ := startSim(t)
	ctx := context.Background()
	for name, src := range map[string]Source{
		"by machine ID":          {Client: client, MachineID: fw.ID},
		"by hostname in project": {Client: client, Hostname: "fw-1", ProjectID: metalsim.DefaultProject},
	} {
		m, err := src.Machine(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.ID != fw.ID {
			t.Errorf("%s: got machine %s, want %s", name, m.ID, fw.ID)
		}
	}
	if _, err := (Source{Client: client, Hostname: "nope", ProjectID: metalsim.DefaultProject}).Machine(ctx); err == nil {
		t.Error("unknown hostname found a machine")
	}

	m, err := Source{Client: client, MachineID: fw.ID}.Machine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	parsed := model.ParseFirewall(FirewallSpec(m))
	if len(parsed.Warnings) != 0 {
		t.Errorf("warnings: %v", parsed.Warnings)
	}
	private := networkOf(t, m, metalsim.DefaultPrivateNetwork)
	if want := prefixes(t, private.Prefixes); !slices.Equal(parsed.ClusterPrefixes, want) || !slices.Equal(parsed.InternalPrefixes, want) {
		t.Errorf("cluster %v internal %v, want %v", parsed.ClusterPrefixes, parsed.InternalPrefixes, want)
	}
	external := networkOf(t, m, metalsim.DefaultExternalNetwork)
	if len(parsed.SNAT) != 1 || parsed.SNAT[0].NetworkID != metalsim.DefaultExternalNetwork || len(parsed.SNAT[0].IPs) != len(external.IPs) ||
		parsed.SNAT[0].Interface != "vlan104009" {
		t.Errorf("SNAT: %+v (external network %+v)", parsed.SNAT, external)
	}

	if asn := ASN(m); asn <= 0 || asn != private.ASN {
		t.Errorf("ASN %d, private network %+v", asn, private)
	}

	spec, notes := PolicySpec(m.Allocation.FirewallRules)
	if len(notes) != 1 {
		t.Errorf("notes: %v", notes)
	}
	snap, verdicts := model.Compose(parsed, []model.PolicyInput{{Key: model.ObjectKey{Source: SourceName, Name: PolicyName}, Spec: spec}}, nil)
	if len(verdicts) != 1 || !verdicts[0].Accepted {
		t.Fatalf("firewall rules refused: %+v", verdicts)
	}
	p := snap.Policies[0]
	if len(p.Egress) != 2 || len(p.Ingress) != 1 || p.Ingress[0].Peers[0].Prefix != netip.MustParsePrefix("203.0.113.0/24") ||
		p.Egress[1].Ports[0] != (model.PortRange{Protocol: model.UDP, First: 53, Last: 53}) {
		t.Errorf("policy: %+v", p)
	}
	// The result renders like any other input.
	if st := ruleset.Render(snap, ruleset.Options{}).Stats(); st.Elements == 0 {
		t.Error("nothing rendered")
	}
}

// Run delivers once, then only on change; a failing metal-api keeps what was delivered.
func TestMetalSourceRunDeliversOnChangeOnly(t *testing.T) {
	client, fw, sim := startSim(t)
	var got sink
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	src := Source{Client: client, MachineID: fw.ID, Interval: 20 * time.Millisecond, Firewall: true, Policies: true, Log: slog.Default()}
	go func() { done <- src.Run(ctx, &got) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if f, p := got.counts(); f >= 1 && p >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sim.Faults().FailNext(metal.OpFirewallGet, 3, 503)
	time.Sleep(200 * time.Millisecond) // failing polls, then more polls of an unchanged machine
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f, p := got.counts(); f != 1 || p != 1 {
		t.Errorf("unchanged machine delivered firewall %d and policies %d times, want once", f, p)
	}
}

func networkOf(t *testing.T, m *metal.MachineResponse, id string) metal.MachineNetwork {
	t.Helper()
	for _, n := range m.Allocation.Networks {
		if n.NetworkID == id {
			return n
		}
	}
	t.Fatalf("machine has no network %s", id)
	return metal.MachineNetwork{}
}

func prefixes(t *testing.T, in []string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range in {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestFirewallSpecDNSServer(t *testing.T) {
	m := &metal.MachineResponse{Allocation: &metal.MachineAllocation{DNSServers: []metal.DNSServer{{IP: "10.0.0.53"}, {IP: "10.0.0.54"}}}}
	if got := model.ParseFirewall(FirewallSpec(m)).DNSUpstream.String(); got != "10.0.0.53:53" {
		t.Errorf("upstream %s", got)
	}
}
