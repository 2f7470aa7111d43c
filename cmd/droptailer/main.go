// Command droptailer runs in the workload cluster's firewall namespace and prints the
// packets the firewalls dropped (and, with logAcceptedConnections, accepted) as JSON lines
// on stdout, so that `kubectl logs -n firewall deploy/droptailer` and
// `stern -n firewall drop` show them. It streams /droplog from every firewall behind the
// nftables-exporter service (headless, one endpoint per firewall), or from --source URLs.
//
//	droptailer [--service nftables-exporter.firewall.svc.cluster.local:9630] [--source URL]...
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/droplog"
)

type urls []string

func (u *urls) String() string     { return strings.Join(*u, ",") }
func (u *urls) Set(v string) error { *u = append(*u, v); return nil }

func main() {
	var sources urls
	service := flag.String("service", "nftables-exporter.firewall.svc.cluster.local:9630",
		"host:port of the headless service whose endpoints are the firewalls; ignored with --source")
	flag.Var(&sources, "source", "URL of one agent's /droplog (repeatable)")
	resolve := flag.Duration("resolve-interval", 30*time.Second, "how often the service name is resolved again")
	flag.Parse()

	// Diagnostics go to stderr; stdout holds nothing but the JSON lines.
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &droplog.Printer{W: os.Stdout}
	if len(sources) == 0 {
		if err := droplog.FollowService(ctx, *service, "/droplog", *resolve, p, log); err != nil {
			log.Error("droptailer stopped", "err", err)
			os.Exit(1)
		}
		return
	}
	var wg sync.WaitGroup
	for _, s := range sources {
		f := &droplog.Follower{URL: s, Printer: p, Log: log}
		wg.Go(func() { f.Run(ctx) })
	}
	wg.Wait()
}
