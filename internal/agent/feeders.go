package agent

import (
	"context"
	"fmt"
	"log/slog"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/dnsproxy"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/runner"
	"github.com/palisade-fw/palisade/internal/agent/source/kube"
	"github.com/palisade-fw/palisade/internal/agent/source/metalapi"
	"github.com/palisade-fw/palisade/internal/metal"
)

func shootFeeder(cfg *config.Config, log *slog.Logger, cwnp, services bool, fqdn func() map[model.ObjectKey]dnsproxy.PolicyState) feeder {
	s := kube.Shoot{
		Kubeconfig:  cfg.Sources.Shoot.Kubeconfig,
		Namespace:   cfg.Sources.Shoot.Namespace,
		Policies:    cwnp,
		Services:    services,
		Agent:       cfg.Name,
		Log:         log.With("source", "shoot"),
		StatusQPS:   cfg.Sources.Shoot.StatusQPS,
		StatusBurst: cfg.Sources.Shoot.StatusBurst,
	}
	if cfg.DNS.ProxyEnabled() {
		s.FQDNStates, s.FQDNInterval = fqdn, config.Duration(cfg.DNS.StatusInterval)
	}
	return func(ctx context.Context, r *runner.Runner) error { return s.Run(ctx, r) }
}

func seedFeeder(cfg *config.Config, log *slog.Logger) feeder {
	s := kube.Seed{
		Kubeconfig: cfg.Sources.Seed.Kubeconfig,
		Namespace:  cfg.Sources.Seed.Namespace,
		Name:       cfg.Name,
		Log:        log.With("source", "seed"),
	}
	return func(ctx context.Context, r *runner.Runner) error { return s.Run(ctx, r) }
}

func metalFeeder(cfg *config.Config, log *slog.Logger, firewall, policies bool) (feeder, error) {
	m := cfg.Sources.Metal
	client, err := metal.New(metal.Config{URL: m.URL, HMACKey: string(m.HMAC), HMACAuthType: m.Type, UserAgent: "palisade-agent"})
	if err != nil {
		return nil, fmt.Errorf("sources.metal: %w", err)
	}
	s := metalapi.Source{
		Client:    client,
		MachineID: m.MachineID,
		Hostname:  m.Hostname,
		ProjectID: m.ProjectID,
		Interval:  config.Duration(m.Interval),
		Firewall:  firewall,
		Policies:  policies,
		Log:       log.With("source", "metal"),
	}
	return func(ctx context.Context, r *runner.Runner) error { return s.Run(ctx, r) }, nil
}

func kubeClient(kubeconfig string) (client.Client, error) {
	cfg, err := kube.RestConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: kube.Scheme()})
}
