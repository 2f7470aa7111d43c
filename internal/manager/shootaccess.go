package manager

import "github.com/palisade-fw/palisade/internal/controller/firewall"

// shootAccess completes the published shoot access from the workload options: under Gardener
// the generic kubeconfig and the token Secret are the ones the manager itself uses for the
// FirewallMonitors (--workload-kubeconfig-secret, --workload-token-secret), and only the
// external API server URL is extra (--shoot-api-server-url).
func shootAccess(opts Options) firewall.ShootAccessConfig {
	sa := opts.Firewall.ShootAccess
	if sa.GenericKubeconfigSecret == "" {
		sa.GenericKubeconfigSecret = opts.Monitors.DefaultKubeconfigSecret
	}
	if sa.TokenSecret == "" {
		sa.TokenSecret = opts.Monitors.TokenSecret
	}
	return sa
}
