// Package kube reads the agent's inputs from Kubernetes: ClusterwideNetworkPolicies and
// Services from the shoot (the cluster behind the firewall), the Firewall from the seed.
package kube

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/model"
)

// SourceShoot marks objects read from the shoot.
const SourceShoot = "shoot"

// sourceRangesAnnotation is the legacy way to set loadBalancerSourceRanges.
const sourceRangesAnnotation = "service.beta.kubernetes.io/load-balancer-source-ranges"

// PolicyInput converts a CWNP.
func PolicyInput(p *v1.ClusterwideNetworkPolicy) model.PolicyInput {
	spec := model.PolicySpec{Description: p.Spec.Description}
	for _, in := range p.Spec.Ingress {
		spec.Ingress = append(spec.Ingress, model.IngressRule{Ports: ports(in.Ports), From: blocks(in.From)})
	}
	for _, out := range p.Spec.Egress {
		rule := model.EgressRule{Ports: ports(out.Ports), To: blocks(out.To)}
		for _, f := range out.ToFQDNs {
			rule.ToFQDNs = append(rule.ToFQDNs, model.FQDNSelector{MatchName: f.MatchName, MatchPattern: f.MatchPattern})
		}
		spec.Egress = append(spec.Egress, rule)
	}
	return model.PolicyInput{
		Key:        model.ObjectKey{Source: SourceShoot, Namespace: p.Namespace, Name: p.Name},
		Generation: p.Generation,
		Spec:       spec,
	}
}

func ports(in []v1.NetworkPolicyPort) []model.PolicyPort {
	var out []model.PolicyPort
	for _, p := range in {
		mp := model.PolicyPort{Port: p.Port, EndPort: p.EndPort}
		if p.Protocol != nil {
			s := string(*p.Protocol)
			mp.Protocol = &s
		}
		out = append(out, mp)
	}
	return out
}

func blocks(in []v1.IPBlock) []model.IPBlock {
	var out []model.IPBlock
	for _, b := range in {
		out = append(out, model.IPBlock{CIDR: b.CIDR, Except: b.Except})
	}
	return out
}

// ServiceInput converts a Service; ok is false for types the firewall never exposes.
func ServiceInput(s *corev1.Service) (model.ServiceInput, bool) {
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer && s.Spec.Type != corev1.ServiceTypeNodePort {
		return model.ServiceInput{}, false
	}
	spec := model.ServiceSpec{
		Name:         s.Name,
		Namespace:    s.Namespace,
		Type:         string(s.Spec.Type),
		SourceRanges: s.Spec.LoadBalancerSourceRanges,
	}
	if len(spec.SourceRanges) == 0 && s.Annotations[sourceRangesAnnotation] != "" {
		spec.SourceRanges = strings.Split(s.Annotations[sourceRangesAnnotation], ",")
	}
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		if s.Spec.LoadBalancerIP != "" {
			spec.IPs = append(spec.IPs, s.Spec.LoadBalancerIP)
		}
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				spec.IPs = append(spec.IPs, ing.IP)
			}
		}
	}
	for _, p := range s.Spec.Ports {
		spec.Ports = append(spec.Ports, model.ServicePort{Name: p.Name, Protocol: string(p.Protocol), Port: p.Port, NodePort: p.NodePort})
	}
	return model.ServiceInput{Key: model.ObjectKey{Source: SourceShoot, Namespace: s.Namespace, Name: s.Name}, Spec: spec}, true
}

// FirewallSpec converts a Firewall's spec and status networks.
func FirewallSpec(fw *v2.Firewall) model.FirewallSpec {
	spec := model.FirewallSpec{
		InternalPrefixes:       fw.Spec.InternalPrefixes,
		AllowedNetworks:        model.AllowedNetworks{Ingress: fw.Spec.AllowedNetworks.Ingress, Egress: fw.Spec.AllowedNetworks.Egress},
		LogAcceptedConnections: fw.Spec.LogAcceptedConnections,
		DryRun:                 fw.Spec.DryRun,
		Ipv4RuleFile:           fw.Spec.Ipv4RuleFile,
		DNSServerAddress:       fw.Spec.DNSServerAddress,
		DNSPort:                fw.Spec.DNSPort,
	}
	for _, rl := range fw.Spec.RateLimits {
		spec.RateLimits = append(spec.RateLimits, model.RateLimitSpec{NetworkID: rl.NetworkID, Rate: rl.Rate})
	}
	for _, er := range fw.Spec.EgressRules {
		spec.EgressRules = append(spec.EgressRules, model.EgressRuleSNAT{NetworkID: er.NetworkID, IPs: er.IPs})
	}
	for _, n := range fw.Status.FirewallNetworks {
		spec.FirewallNetworks = append(spec.FirewallNetworks, model.FirewallNetwork{
			NetworkID:   deref(n.NetworkID),
			NetworkType: deref(n.NetworkType),
			Vrf:         deref(n.Vrf),
			Prefixes:    n.Prefixes,
			IPs:         n.IPs,
			Nat:         deref(n.Nat),
		})
	}
	return spec
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
