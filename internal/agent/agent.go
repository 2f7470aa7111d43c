// Package agent wires the config file to sources, the rule-file runner and the applier.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/dnsproxy"
	"github.com/palisade-fw/palisade/internal/agent/drift"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/report"
	"github.com/palisade-fw/palisade/internal/agent/runner"
	"github.com/palisade-fw/palisade/internal/agent/source/kube"
	"github.com/palisade-fw/palisade/internal/agent/source/static"
)

// feeder delivers one or more parts to the runner until ctx ends.
type feeder func(ctx context.Context, r *runner.Runner) error

// Agent is one configured agent.
type Agent struct {
	cfg     *config.Config
	log     *slog.Logger
	applier *nft.Applier
	netlink *nft.Netlink
	runner  *runner.Runner
	hub     *report.Hub // nil when there is nowhere to report to
	feeders []feeder
	x       extras          // metrics, dropped-packet log, IDS, host state, self-update (extras.go)
	drift   *drift.Detector // nil on a fake kernel (drift.go)

	proxyMu sync.Mutex
	proxy   *dnsproxy.Proxy // the running DNS proxy; nil outside Run or when disabled
}

// New builds the agent for cfg; it fails for sources that are configured but unusable.
func New(cfg *config.Config, log *slog.Logger) (*Agent, error) {
	// Netlink works in the agent's own network namespace.
	nl, err := nft.NewNetlink(cfg.Nftables.Table, "")
	if err != nil {
		return nil, err
	}
	return NewWith(cfg, log, nl)
}

// NewWith builds the agent on a given kernel (tests use nft.FakeKernel); statistics are
// reported only when it is the real *nft.Netlink.
func NewWith(cfg *config.Config, log *slog.Logger, kernel nft.Kernel) (*Agent, error) {
	if log == nil {
		log = slog.Default()
	}
	a := &Agent{cfg: cfg, log: log}
	if nl, ok := kernel.(*nft.Netlink); ok {
		a.netlink = nl
	}
	a.applier = nft.New(kernel, nft.Options{RuleFile: cfg.Nftables.RuleFile, Log: log})
	ctl := cfg.Controllers
	var dnsPort uint16
	if cfg.DNS.ProxyEnabled() {
		dnsPort = cfg.DNS.Port
	}
	measured, err := a.wireExtras(a.applier)
	if err != nil {
		return nil, err
	}
	a.runner = runner.New(measured, runner.Parts{Policies: ctl.CWNP != nil, Services: ctl.Service != nil},
		runner.Options{Table: cfg.Nftables.Table, DefaultEgress: cfg.Nftables.DefaultEgressEnabled(), Log: log, DNSProxyPort: dnsPort})
	if a.x.nft != nil {
		a.runner.AddReporter(a.x.nft)
	}
	if cfg.Nftables.DefaultEgressEnabled() {
		log.Info("default egress in force", "rule", model.DefaultEgressComment)
	}
	if err := a.wire(); err != nil {
		return nil, err
	}
	if err := a.wireReporting(); err != nil {
		return nil, err
	}
	a.wireDrift()
	a.runner.AddObserver(a) // host state follows the spec (extras.go)
	return a, nil
}

// wireReporting sets up the status reports: the seed Firewall when a seed is configured, the
// FirewallMonitor when the monitor controller runs, and the BGP distance when the Firewall
// comes from the seed (only it carries a distance).
func (a *Agent) wireReporting() error {
	cfg := a.cfg
	var sinks []report.Sink
	var seedContact func() time.Time
	if s := cfg.Sources.Seed; s != nil {
		c, err := kubeClient(s.Kubeconfig)
		if err != nil {
			return fmt.Errorf("sources.seed: %w", err)
		}
		seed := &report.SeedFirewall{Client: c, Namespace: s.Namespace, Name: cfg.Name, Stats: a.stats}
		seedContact = seed.LastContact
		sinks = append(sinks, seed)
	}
	if cfg.Controllers.Monitor != nil {
		c, err := kubeClient(cfg.Sources.Shoot.Kubeconfig)
		if err != nil {
			return fmt.Errorf("sources.shoot: %w", err)
		}
		mon := &report.Monitor{Client: c, Name: cfg.Name, Log: a.log}
		if a.netlink != nil || a.x.ids != nil {
			mon.Stats = a.stats
		}
		sinks = append(sinks, mon)
	}
	if len(sinks) == 0 {
		return nil
	}
	fromSeed := cfg.Controllers.Firewall.Source == config.SourceSeed
	var frr *report.FRR
	if fromSeed && cfg.Distance.FRRFile != config.DistanceDisabled {
		frr = &report.FRR{File: cfg.Distance.FRRFile, RouteMap: cfg.Distance.RouteMap, ASN: cfg.Distance.ASN}
	}
	a.hub = report.NewHub(report.HubOptions{
		Interval:    config.Duration(cfg.Reporting.Interval),
		Distance:    frr,
		FromSeed:    fromSeed,
		SeedContact: seedContact,
		Confirm: func(ctx context.Context) error {
			if !cfg.Nftables.RepairDriftEnabled() {
				return a.applier.Verify(ctx) // report only: the next apply stays a delta
			}
			err := a.applier.Confirm(ctx)
			if err != nil {
				a.runner.Notify() // the applier forgot; the next sync is a full one
			}
			return err
		},
		Sinks: sinks,
		Log:   a.log.With("controller", "report"),
	})
	a.runner.AddObserver(a.hub)
	return nil
}

func (a *Agent) wire() error {
	ctl, src := a.cfg.Controllers, a.cfg.Sources
	var metalFirewall, metalPolicies bool
	switch ctl.Firewall.Source {
	case config.SourceStatic:
		a.runner.SetFirewall(static.Firewall(src.Static))
	case config.SourceSeed:
		a.feeders = append(a.feeders, seedFeeder(a.cfg, a.log))
	case config.SourceMetal:
		metalFirewall = true
	}

	var shootCWNP, shootServices bool
	if ctl.CWNP != nil {
		switch ctl.CWNP.Source {
		case config.SourceStatic:
			a.runner.SetPolicies(static.Policies(src.Static))
		case config.SourceShoot:
			shootCWNP = true
		case config.SourceMetal:
			metalPolicies = true
		}
	}
	if ctl.Service != nil {
		switch ctl.Service.Source {
		case config.SourceStatic:
			a.runner.SetServices(static.Services(src.Static))
		case config.SourceShoot:
			shootServices = true
		case config.SourceMetal:
			return errors.New("controllers.service.source: metal-api holds no services; use shoot or static")
		}
	}
	if metalFirewall || metalPolicies {
		f, err := metalFeeder(a.cfg, a.log, metalFirewall, metalPolicies)
		if err != nil {
			return err
		}
		a.feeders = append(a.feeders, f)
	}
	if shootCWNP || shootServices {
		a.feeders = append(a.feeders, shootFeeder(a.cfg, a.log, shootCWNP, shootServices, a.fqdnStates))
	}
	return nil
}

// Run reconciles until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(a.feeders)+10)
	// The proxy listens before the first ruleset redirects DNS to it; on the way out it
	// saves the learned state before Run returns.
	proxyDone, err := a.startDNSProxy(ctx, errs)
	if err != nil {
		return err
	}
	defer func() {
		cancel()
		<-proxyDone
	}()
	for _, f := range a.feeders {
		go func() { errs <- f(ctx, a.runner) }()
	}
	go func() { errs <- a.runner.Run(ctx) }()
	a.runExtras(ctx, errs)
	a.runDrift(ctx)
	if a.hub != nil {
		go func() { errs <- a.hub.Run(ctx) }()
	}
	// Generated kubeconfigs carry bound tokens that expire: follow their rotation.
	for _, path := range a.kubeconfigs() {
		refresher := &kube.TokenRefresher{Path: path, Log: a.log}
		go func() { _ = refresher.Run(ctx) }()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// kubeconfigs returns the distinct kubeconfig files of the seed and shoot sources.
func (a *Agent) kubeconfigs() []string {
	var paths []string
	for _, s := range []*config.KubeSource{a.cfg.Sources.Seed, a.cfg.Sources.Shoot} {
		if s != nil && s.Kubeconfig != "" && !slices.Contains(paths, s.Kubeconfig) {
			paths = append(paths, s.Kubeconfig)
		}
	}
	return paths
}

// Once waits until every source has delivered, applies once and returns.
func (a *Agent) Once(ctx context.Context, wait time.Duration) (runner.Outcome, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := a.startAndWait(ctx, wait); err != nil {
		return runner.Outcome{}, err
	}
	// No proxy runs in a one-shot apply, so the cluster's DNS is not redirected to it.
	a.runner.SetDNSProxyPort(0)
	out, err := a.runner.Sync(ctx)
	if a.hub != nil {
		a.hub.WriteNow(ctx) // a failed apply is reported too
	}
	if err != nil {
		return out, err
	}
	// The rule file is written in the background; a one-shot run must not exit before.
	return out, a.applier.WaitFile(ctx)
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
		switch {
		case !v.Accepted:
			fmt.Fprintf(w, "# refused %s %s: %s\n", v.Kind, v.Key, v.Message)
		case v.Key.Source == model.SourceDefault:
			fmt.Fprintf(w, "# %s: %s\n", v.Key, v.Message)
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
