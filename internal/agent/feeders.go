package agent

import (
	"context"
	"log/slog"

	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/runner"
	"github.com/palisade-fw/palisade/internal/agent/source/kube"
)

func shootFeeder(cfg *config.Config, log *slog.Logger, cwnp, services bool) feeder {
	s := kube.Shoot{
		Kubeconfig: cfg.Sources.Shoot.Kubeconfig,
		Namespace:  cfg.Sources.Shoot.Namespace,
		Policies:   cwnp,
		Services:   services,
		Agent:      cfg.Name,
		Log:        log.With("source", "shoot"),
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
