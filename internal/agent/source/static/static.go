// Package static turns the inline static source of the config file into contributions.
package static

import (
	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/model"
)

// SourceName marks objects from the config file.
const SourceName = "static"

// Firewall returns the firewall part; an absent static.firewall is an empty spec.
func Firewall(s *config.StaticSource) model.Firewall {
	if s == nil || s.Firewall == nil {
		return model.ParseFirewall(model.FirewallSpec{})
	}
	fw := model.ParseFirewall(s.Firewall.FirewallSpec)
	fw.Host = model.HostSpec{SSHPublicKeys: s.Firewall.SSHPublicKeys, ControllerURL: s.Firewall.ControllerURL,
		ControllerVersion: s.Firewall.ControllerVersion}
	return fw
}

// Policies returns static.cwnp as the policy named "static".
func Policies(s *config.StaticSource) []model.PolicyInput {
	if s == nil || s.CWNP == nil {
		return []model.PolicyInput{}
	}
	return []model.PolicyInput{{Key: model.ObjectKey{Source: SourceName, Name: "static"}, Spec: *s.CWNP}}
}

// Services returns static.services.
func Services(s *config.StaticSource) []model.ServiceInput {
	out := []model.ServiceInput{}
	if s == nil {
		return out
	}
	for _, svc := range s.Services {
		out = append(out, model.ServiceInput{Key: model.ObjectKey{Source: SourceName, Namespace: svc.Namespace, Name: svc.Name}, Spec: svc})
	}
	return out
}
