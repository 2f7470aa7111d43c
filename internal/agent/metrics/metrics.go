// Package metrics serves the agent's Prometheus metrics (the nftables-exporter's port, 9630,
// by default) and collects the nftables ones: packet and byte counters per
// ClusterwideNetworkPolicy and Service (labelled with the object's name, never the hashed
// counter name), per other named rule, the device accounting counters, and how applying the
// ruleset went.
//
// Other agent packages add their own collectors to the one registry:
//
//	reg := metrics.NewRegistry()
//	reg.MustRegister(myCollector) // e.g. the DNS proxy's counters
//	srv := metrics.NewServer(addr, reg, log)
//
// Metric names start with "palisade_"; a package picks its own subsystem (nftables,
// droplog, ids, selfupdate, dns, ...).
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddress is where the metrics are served unless configured otherwise: the port of
// the nftables-exporter the workload cluster's `nftables-exporter` Service points at.
const DefaultAddress = ":9630"

// Namespace prefixes every metric of the agent.
const Namespace = "palisade"

// NewRegistry returns a registry holding the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Server serves /metrics of a registry and whatever else is mounted with Handle.
type Server struct {
	Addr     string
	Registry *prometheus.Registry
	Log      *slog.Logger
	mux      *http.ServeMux
}

// NewServer returns a server for reg on addr (DefaultAddress when empty).
func NewServer(addr string, reg *prometheus.Registry, log *slog.Logger) *Server {
	if addr == "" {
		addr = DefaultAddress
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{Addr: addr, Registry: reg, Log: log, mux: http.NewServeMux()}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return s
}

// Handle mounts another handler (e.g. the dropped-packet stream) on the same port.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is everything the server serves (for tests).
func (s *Server) Handler() http.Handler { return s.mux }

// Run listens on Addr and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	lis, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, lis)
}

// Serve serves on lis until ctx ends.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	// Handlers see ctx end, so that streams (the dropped-packet log) stop at shutdown.
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	s.Log.Info("serving metrics", "address", lis.Addr().String())
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
