package firewall

import (
	"strings"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// ShootAccessConfig is what the manager publishes in Firewall.status.shootAccess, as the
// upstream manager does under Gardener: the upstream firewall-controller (in today's firewall
// images) builds its workload-cluster client from these seed Secrets and the external API
// server URL, and re-reads them when Gardener rotates the token.
type ShootAccessConfig struct {
	// GenericKubeconfigSecret is Gardener's generic token kubeconfig Secret in the firewall's
	// namespace ("<name>" or "<name>/<key>"; the key is not published).
	GenericKubeconfigSecret string
	// TokenSecret is the Secret with the token the generic kubeconfig's token file gets.
	TokenSecret string
	// APIServerURL is the workload API server as the firewalls reach it. Empty: nothing is published.
	APIServerURL string
}

// For returns fw's shoot access, or nil when none is configured.
func (c ShootAccessConfig) For(fw *v2.Firewall) *v2.ShootAccess {
	if c.APIServerURL == "" || c.GenericKubeconfigSecret == "" {
		return nil
	}
	name, _, _ := strings.Cut(c.GenericKubeconfigSecret, "/")
	return &v2.ShootAccess{
		GenericKubeconfigSecretName: name,
		TokenSecretName:             c.TokenSecret,
		Namespace:                   fw.Namespace,
		APIServerURL:                c.APIServerURL,
	}
}

// Secrets are the Secrets the agent reads to follow the shoot access (for its Role).
func (c ShootAccessConfig) Secrets() []string {
	if c.For(&v2.Firewall{}) == nil {
		return nil
	}
	name, _, _ := strings.Cut(c.GenericKubeconfigSecret, "/")
	out := []string{name}
	if c.TokenSecret != "" {
		out = append(out, c.TokenSecret)
	}
	return out
}
