// Package metalapi is the metal source: the firewall machine's own networks and firewall
// rules as metal-api holds them (allocation.networks and allocation.firewall_rules), read by
// polling because metal-api has no watch.
package metalapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/metal"
)

// SourceName marks objects from metal-api.
const SourceName = "metal"

// PolicyName is the policy that carries allocation.firewall_rules.
const PolicyName = "firewall-rules"

// Sink receives what the source read; *runner.Runner implements it.
type Sink interface {
	SetFirewall(model.Firewall)
	SetPolicies([]model.PolicyInput)
}

// Source reads one firewall machine.
type Source struct {
	Client metal.Client
	// MachineID selects the machine; without it, the firewall with allocation hostname
	// Hostname in ProjectID.
	MachineID string
	Hostname  string
	ProjectID string
	Interval  time.Duration
	// Firewall and Policies select what is handed to the sink.
	Firewall bool
	Policies bool
	Log      *slog.Logger
}

// Run polls until ctx ends. A failed read keeps what was delivered last (fail closed); the
// sink is only called when the derived content changed.
func (s Source) Run(ctx context.Context, sink Sink) error {
	if s.Interval <= 0 {
		s.Interval = 30 * time.Second
	}
	var lastFW *model.FirewallSpec
	var lastPolicy *model.PolicySpec
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	for {
		m, err := s.Machine(ctx)
		if err != nil {
			s.Log.Warn("reading the firewall from metal-api failed; keeping the current rules", "err", err)
		} else {
			if s.Firewall {
				spec := FirewallSpec(m)
				if lastFW == nil || !reflect.DeepEqual(*lastFW, spec) {
					lastFW = &spec
					fw := model.ParseFirewall(spec)
					fw.ASN = ASN(m)
					sink.SetFirewall(fw)
				}
			}
			if s.Policies {
				spec, notes := PolicySpec(m.Allocation.FirewallRules)
				if lastPolicy == nil || !reflect.DeepEqual(*lastPolicy, spec) {
					lastPolicy = &spec
					for _, n := range notes {
						s.Log.Warn("metal-api firewall rule skipped", "reason", n)
					}
					sink.SetPolicies([]model.PolicyInput{{Key: model.ObjectKey{Source: SourceName, Name: PolicyName}, Spec: spec}})
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Machine reads the firewall machine and checks that it is an allocated firewall.
func (s Source) Machine(ctx context.Context) (*metal.MachineResponse, error) {
	var m *metal.MachineResponse
	if s.MachineID != "" {
		var err error
		if m, err = s.Client.GetFirewall(ctx, s.MachineID); err != nil {
			return nil, fmt.Errorf("firewall %s: %w", s.MachineID, err)
		}
	} else {
		found, err := s.Client.FindFirewalls(ctx, &metal.FirewallFindRequest{AllocationHostname: s.Hostname, AllocationProject: s.ProjectID})
		if err != nil {
			return nil, fmt.Errorf("finding firewall %q in project %s: %w", s.Hostname, s.ProjectID, err)
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("no firewall with hostname %q in project %s", s.Hostname, s.ProjectID)
		case 1:
			m = found[0]
		default:
			return nil, fmt.Errorf("%d firewalls with hostname %q in project %s; set sources.metal.machineID", len(found), s.Hostname, s.ProjectID)
		}
	}
	if m == nil || m.Allocation == nil {
		return nil, errors.New("machine is not allocated")
	}
	return m, nil
}

// FirewallSpec turns the allocation's networks into the firewall part: networks with their
// prefixes, IPs and VRFs (cluster prefixes come from the private primary network), internal
// prefixes from every private network, and SNAT to the firewall's own IPs on every network
// with NAT, as metal-networker configures it, and the first of the allocation's DNS servers
// as the DNS proxy's resolver.
func FirewallSpec(m *metal.MachineResponse) model.FirewallSpec {
	var spec model.FirewallSpec
	for _, n := range m.Allocation.Networks {
		typ := networkType(n)
		spec.FirewallNetworks = append(spec.FirewallNetworks, model.FirewallNetwork{
			NetworkID: n.NetworkID, NetworkType: typ, Vrf: n.VRF,
			Prefixes: n.Prefixes, IPs: n.IPs, Nat: n.NAT,
		})
		if n.Private && !n.Underlay {
			spec.InternalPrefixes = append(spec.InternalPrefixes, n.Prefixes...)
		}
		if n.NAT && !n.Private && !n.Underlay && len(n.IPs) > 0 {
			spec.EgressRules = append(spec.EgressRules, model.EgressRuleSNAT{NetworkID: n.NetworkID, IPs: n.IPs})
		}
	}
	// The allocation's resolvers default to the partition's; the DNS proxy forwards to the first.
	if len(m.Allocation.DNSServers) > 0 {
		spec.DNSServerAddress = m.Allocation.DNSServers[0].IP
	}
	return spec
}

// ASN is the firewall's own AS: the one of its private primary network.
func ASN(m *metal.MachineResponse) int64 {
	for _, n := range m.Allocation.Networks {
		if n.Private && !n.Underlay && strings.HasPrefix(networkType(n), "privateprimary") {
			return n.ASN
		}
	}
	return 0
}

// networkType is metal-api's network type, derived from the flags when an older API leaves
// it empty.
func networkType(n metal.MachineNetwork) string {
	switch {
	case n.NetworkType != "":
		return n.NetworkType
	case n.Underlay:
		return "underlay"
	case n.Private:
		return "privateprimaryunshared"
	}
	return "external"
}

// PolicySpec turns allocation.firewall_rules into one policy. An ingress rule restricted to
// destinations ("to") is skipped: the agent's ingress always goes to the cluster, and
// opening it wider than asked would not be safe. notes explain skipped rules.
func PolicySpec(rules *metal.FirewallRules) (spec model.PolicySpec, notes []string) {
	spec.Egress, spec.Ingress = []model.EgressRule{}, []model.IngressRule{}
	if rules == nil {
		return spec, nil
	}
	for i, r := range rules.Egress {
		if len(r.To) == 0 {
			notes = append(notes, fmt.Sprintf("firewall_rules.egress[%d]: no destinations; rule skipped", i))
			continue
		}
		spec.Egress = append(spec.Egress, model.EgressRule{Ports: ports(r.Protocol, r.Ports), To: blocks(r.To)})
	}
	for i, r := range rules.Ingress {
		switch {
		case len(r.To) > 0:
			notes = append(notes, fmt.Sprintf("firewall_rules.ingress[%d]: destinations (to) are not supported; rule skipped", i))
			continue
		case len(r.From) == 0:
			notes = append(notes, fmt.Sprintf("firewall_rules.ingress[%d]: no sources; rule skipped", i))
			continue
		}
		spec.Ingress = append(spec.Ingress, model.IngressRule{Ports: ports(r.Protocol, r.Ports), From: blocks(r.From)})
	}
	return spec, notes
}

func ports(protocol string, numbers []int32) []model.PolicyPort {
	proto := strings.ToUpper(protocol)
	if proto == "" {
		proto = "TCP"
	}
	out := make([]model.PolicyPort, 0, len(numbers))
	for _, n := range numbers {
		out = append(out, model.PolicyPort{Protocol: &proto, Port: &n})
	}
	return out
}

// blocks is only called with addresses: a CWNP rule without peers means every address,
// which a metal rule without addresses must not turn into.
func blocks(cidrs []string) []model.IPBlock {
	out := make([]model.IPBlock, 0, len(cidrs))
	for _, c := range cidrs {
		out = append(out, model.IPBlock{CIDR: c})
	}
	return out
}
