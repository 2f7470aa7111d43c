// Command agent enforces ClusterwideNetworkPolicies, Services and the Firewall spec with
// nftables on a firewall machine.
//
//	agent --config FILE [--once] [--dry-run]
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/go-logr/logr"
	"log/slog"
	"os"
	"os/signal"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"syscall"
	"time"

	"github.com/palisade-fw/palisade/internal/agent"
	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/report"
	"github.com/palisade-fw/palisade/internal/version"
)

func main() {
	os.Exit(run())
}

func run() int {
	configPath := flag.String("config", "/etc/firewall-controller/config.yaml", "agent config file")
	once := flag.Bool("once", false, "apply once and exit; non-zero exit status on failure")
	dryRun := flag.Bool("dry-run", false, "print the diff between the live table and the rendered ruleset; change nothing")
	wait := flag.Duration("wait", time.Minute, "with --once or --dry-run: how long to wait for the sources")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.String())
		return 0
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "--log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// The Kubernetes clients log through controller-runtime; send that to the same handler.
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))

	cfg, err := config.Load(*configPath)
	if err != nil {
		log.Error("invalid config", "err", err)
		return 2
	}
	a, err := agent.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch {
	case *dryRun:
		if err := a.DryRun(ctx, *wait, os.Stdout); err != nil {
			log.Error("dry run failed", "err", err)
			return 1
		}
	case *once:
		out, err := a.Once(ctx, *wait)
		if err != nil {
			log.Error("apply failed", "err", err, "previousRulesetKept", nft.PreviousKept(err))
			return 1
		}
		st := out.Ruleset.Stats()
		log.Info("applied", "changed", out.Result.Changed, "dryRunSpec", out.DryRun, "forwardRules", st.ForwardRules,
			"sets", st.Sets, "elements", st.Elements, "objects", len(out.Verdicts))
	default:
		log.Info("agent starting", "version", report.Version, "name", cfg.Name, "table", cfg.Nftables.Table, "ruleFile", cfg.Nftables.RuleFile)
		if err := a.Run(ctx); err != nil {
			log.Error("agent stopped", "err", err)
			return 1
		}
	}
	return 0
}
