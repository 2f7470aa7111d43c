package webhook

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	webhookv1 "github.com/palisade-fw/palisade/internal/webhook/v1"
	webhookv2 "github.com/palisade-fw/palisade/internal/webhook/v2"
)

// Names of the webhook configurations generated into config/webhook; the self-signed
// certificate mode patches its CA bundle into them (see certs.Options).
const (
	MutatingWebhookConfigurationName   = "palisade-mutating-webhook-configuration"
	ValidatingWebhookConfigurationName = "palisade-validating-webhook-configuration"
)

// SetupWebhooksWithManager registers every Palisade webhook with the manager's webhook server.
func SetupWebhooksWithManager(mgr ctrl.Manager) error {
	for _, w := range []struct {
		kind  string
		setup func(ctrl.Manager) error
	}{
		{"FirewallDeployment", webhookv2.SetupFirewallDeploymentWebhookWithManager},
		{"FirewallSet", webhookv2.SetupFirewallSetWebhookWithManager},
		{"Firewall", webhookv2.SetupFirewallWebhookWithManager},
		{"ClusterwideNetworkPolicy", webhookv1.SetupClusterwideNetworkPolicyWebhookWithManager},
	} {
		if err := w.setup(mgr); err != nil {
			return fmt.Errorf("setting up the %s webhooks: %w", w.kind, err)
		}
	}
	return nil
}
