// Command metal-sim serves a simulated metal-api for demos and manual tests.
//
//	metal-sim --listen 127.0.0.1:8080 --config config/samples/metal-sim.yaml
//	curl -X POST -d '{"count":1}' http://127.0.0.1:8080/_sim/faults/conflict-on-update
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "metal-sim:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. ready, if set, receives the base URL once
// the listener is up.
func run(ctx context.Context, args []string, out io.Writer, ready func(url string)) error {
	fs := flag.NewFlagSet("metal-sim", flag.ContinueOnError)
	fs.SetOutput(out)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	configPath := fs.String("config", "", "YAML fleet config (default: the built-in fleet)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg := metalsim.DefaultConfig()
	source := "built-in default fleet"
	if *configPath != "" {
		var err error
		if cfg, err = metalsim.LoadConfig(*configPath); err != nil {
			return err
		}
		source = *configPath
	}
	sim := metalsim.New(cfg)
	url, stopServer, err := sim.Serve(*listen)
	if err != nil {
		return err
	}
	defer stopServer()

	machines := sim.Machines()
	// Keys stay secret: only the accepted auth types are printed.
	fmt.Fprintf(out, "metal-sim listening on %s\n", url)
	fmt.Fprintf(out, "config: %s (%d machines)\n", source, len(machines))
	fmt.Fprintf(out, "accepted auth types: %s\n", strings.Join(sim.AuthTypes(), ", "))
	fmt.Fprintf(out, "faults: GET %s lists them, POST %s{name} applies one\n", adminURL(url, "faults"), adminURL(url, "faults/"))
	if ready != nil {
		ready(url)
	}
	<-ctx.Done()
	fmt.Fprintln(out, "metal-sim shutting down")
	return nil
}

// adminURL puts the fault endpoints at the server root, beside any base path.
func adminURL(baseURL, path string) string {
	u, err := neturl.Parse(baseURL)
	if err != nil {
		return metalsim.AdminPrefix + path
	}
	u.Path = metalsim.AdminPrefix + path
	return u.String()
}
