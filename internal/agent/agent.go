// Package agent wires the config file to sources, the rule-file runner and the applier.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/runner"
	"github.com/palisade-fw/palisade/internal/agent/source/static"
)

// feeder delivers one or more parts to the runner until ctx ends.
type feeder func(ctx context.Context, r *runner.Runner) error

// Agent is one configured agent.
type Agent struct {
	cfg     *config.Config
	log     *slog.Logger
	applier *nft.Applier
	runner  *runner.Runner
	feeders []feeder
}

// New builds the agent for cfg; it fails for sources that are configured but unusable.
func New(cfg *config.Config, log *slog.Logger) (*Agent, error) {
	nftIface, err := knftables.New(knftables.InetFamily, cfg.Nftables.Table)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return NewWith(cfg, log, nftIface)
}

// NewWith builds the agent on a given nftables interface.
func NewWith(cfg *config.Config, log *slog.Logger, nftIface knftables.Interface) (*Agent, error) {
	if log == nil {
		log = slog.Default()
	}
	a := &Agent{cfg: cfg, log: log}
	a.applier = nft.New(nftIface, nft.Options{RuleFile: cfg.Nftables.RuleFile})
	ctl := cfg.Controllers
	a.runner = runner.New(a.applier, runner.Parts{Policies: ctl.CWNP != nil, Services: ctl.Service != nil},
		runner.Options{Table: cfg.Nftables.Table, Log: log})
	if err := a.wire(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Agent) wire() error {
	ctl, src := a.cfg.Controllers, a.cfg.Sources
	switch ctl.Firewall.Source {
	case config.SourceStatic:
		a.runner.SetFirewall(static.Firewall(src.Static))
	case config.SourceSeed:
		a.feeders = append(a.feeders, seedFeeder(a.cfg, a.log))
	case config.SourceMetal:
		return notImplemented("controllers.firewall.source")
	}

	var shootCWNP, shootServices bool
	if ctl.CWNP != nil {
		switch ctl.CWNP.Source {
		case config.SourceStatic:
			a.runner.SetPolicies(static.Policies(src.Static))
		case config.SourceShoot:
			shootCWNP = true
		case config.SourceMetal:
			return notImplemented("controllers.cwnp.source")
		}
	}
	if ctl.Service != nil {
		switch ctl.Service.Source {
		case config.SourceStatic:
			a.runner.SetServices(static.Services(src.Static))
		case config.SourceShoot:
			shootServices = true
		case config.SourceMetal:
			return notImplemented("controllers.service.source")
		}
	}
	if shootCWNP || shootServices {
		a.feeders = append(a.feeders, shootFeeder(a.cfg, a.log, shootCWNP, shootServices))
	}
	if ctl.Monitor != nil {
		a.log.Warn("controllers.monitor is not implemented by this agent yet; ignored")
	}
	if t := ctl.Firewall.SelfUpdate; t != nil && t.Enabled {
		a.log.Warn("controllers.firewall.selfUpdate is not implemented by this agent; ignored")
	}
	if t := ctl.Firewall.Droptailer; t != nil && t.Enabled {
		a.log.Warn("controllers.firewall.droptailer is not implemented by this agent; ignored")
	}
	return nil
}

func notImplemented(key string) error {
	return fmt.Errorf("%s: the metal source is not implemented yet; use seed/shoot or static", key)
}

// Run reconciles until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(a.feeders)+1)
	for _, f := range a.feeders {
		go func() { errs <- f(ctx, a.runner) }()
	}
	go func() { errs <- a.runner.Run(ctx) }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// Once waits until every source has delivered, applies once and returns.
func (a *Agent) Once(ctx context.Context, wait time.Duration) (runner.Outcome, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := a.startAndWait(ctx, wait); err != nil {
		return runner.Outcome{}, err
	}
	return a.runner.Sync(ctx)
}

// DryRun waits for the sources and writes the diff from the live table to what would be
// applied; nothing is changed.
func (a *Agent) DryRun(ctx context.Context, wait time.Duration, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := a.startAndWait(ctx, wait); err != nil {
		return err
	}
	rs, verdicts, _, err := a.runner.Render()
	if err != nil {
		return err
	}
	for _, v := range verdicts {
		if !v.Accepted {
			fmt.Fprintf(w, "# refused %s %s: %s\n", v.Kind, v.Key, v.Message)
		}
	}
	diff, err := a.applier.Diff(ctx, rs)
	if err != nil {
		return err
	}
	if diff == "" {
		diff = "# no changes\n"
	}
	_, err = io.WriteString(w, diff)
	return err
}

func (a *Agent) startAndWait(ctx context.Context, wait time.Duration) error {
	errs := make(chan error, len(a.feeders))
	for _, f := range a.feeders {
		go func() { errs <- f(ctx, a.runner) }()
	}
	deadline := time.After(wait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		_, _, _, err := a.runner.Render()
		if !errors.Is(err, runner.ErrNotReady) {
			return err
		}
		select {
		case err := <-errs:
			if err == nil {
				err = errors.New("source stopped before delivering")
			}
			return err
		case <-deadline:
			return fmt.Errorf("sources did not deliver within %s: %w", wait, runner.ErrNotReady)
		case <-tick.C:
		}
	}
}

// Runner exposes the runner (for tests and benchmarks).
func (a *Agent) Runner() *runner.Runner { return a.runner }
