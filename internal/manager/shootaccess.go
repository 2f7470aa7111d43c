package manager

import (
	"context"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/firewall"
	"github.com/palisade-fw/palisade/internal/userdata/agentaccess"
	"github.com/palisade-fw/palisade/internal/workload"
)

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

// shootConnector reaches a deployment's workload cluster as its firewalls' monitors do (the
// deployment's workload-kubeconfig annotation, else --workload-kubeconfig-secret, else the
// manager's own cluster). The firewalls reach it at apiServerURL (-shoot-api-url) when set,
// else at the address the manager uses.
func shootConnector(registry *workload.Registry, apiServerURL string) agentaccess.ShootConnector {
	return func(ctx context.Context, deploy *v2.FirewallDeployment) (*agentaccess.ShootCluster, error) {
		// The registry picks the kubeconfig from a firewall's namespace and annotations, which
		// the firewalls inherit from the deployment.
		probe := &v2.Firewall{}
		probe.Namespace, probe.Annotations = deploy.Namespace, deploy.Annotations
		c, err := registry.For(ctx, probe)
		if err != nil {
			return nil, err
		}
		server := apiServerURL
		if server == "" {
			server = c.Server
		}
		return &agentaccess.ShootCluster{Client: c.Client, Reader: c.APIReader, Namespace: c.Namespace,
			Server: server, CAData: c.CAData, Shared: c.Local}, nil
	}
}
