// Package metalsim is an in-memory metal-api that speaks the real wire
// protocol (paths, JSON, status codes, HMAC) for the firewall subset, with
// time-driven provisioning and fault injection. Tests, the demo and the
// benchmarks run against it over real HTTP.
package metalsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Simulator is a fake metal-api. All methods are safe for concurrent use.
type Simulator struct {
	mu       sync.Mutex
	clock    clock.PassiveClock
	cfg      Config
	st       *state
	counts   map[string]int
	requests []RequestRecord
	handler  http.Handler
	faults   *Faults
}

// Option customizes a Simulator.
type Option func(*Simulator)

// WithClock drives provisioning, liveliness and X-Date checks from c, e.g.
// a k8s.io/utils/clock/testing.FakeClock.
func WithClock(c clock.PassiveClock) Option {
	return func(s *Simulator) { s.clock = c }
}

// New builds a simulator and applies cfg.Faults. It panics when cfg is
// invalid or a fault cannot be applied (e.g. "lock" of an unknown machine);
// use Config.Validate or LoadConfig to get most errors instead.
func New(cfg Config, opts ...Option) *Simulator {
	if err := cfg.Validate(); err != nil {
		panic("metalsim: invalid config: " + err.Error())
	}
	if cfg.BasePath == "" {
		cfg.BasePath = "/"
	}
	s := &Simulator{clock: clock.RealClock{}, cfg: cfg, counts: map[string]int{}}
	for _, o := range opts {
		o(s)
	}
	st, err := newState(cfg, s.clock.Now())
	if err != nil {
		panic("metalsim: " + err.Error())
	}
	s.st = st
	s.faults = &Faults{sim: s}
	s.handler = s.buildHandler()
	for _, spec := range cfg.Faults {
		if err := s.faults.Apply(spec); err != nil {
			panic("metalsim: config: " + err.Error())
		}
	}
	return s
}

// Handler serves the metal-api under Config.BasePath.
func (s *Simulator) Handler() http.Handler { return s.handler }

// Start serves on a random loopback port. url includes the base path, ready
// for metal.Config.URL; stop shuts the server down.
func (s *Simulator) Start() (url string, stop func(), err error) {
	return s.Serve("127.0.0.1:0")
}

// Serve listens on addr and serves in the background.
func (s *Simulator) Serve(addr string) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "metalsim: serve: %v\n", err)
		}
	}()
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
	return "http://" + ln.Addr().String() + strings.TrimSuffix(s.cfg.BasePath, "/"), stop, nil
}

// AuthTypes lists the accepted Authorization schemes, for startup output.
func (s *Simulator) AuthTypes() []string {
	if s.cfg.DisableAuth {
		return []string{"none (auth disabled)"}
	}
	var out []string
	for _, t := range []string{"Metal-View", "Metal-Edit", "Metal-Admin"} {
		if _, ok := s.cfg.HMACKeys[t]; ok {
			out = append(out, t)
		}
	}
	if len(s.cfg.BearerTokens) > 0 {
		out = append(out, "Bearer")
	}
	return out
}

// locked runs f with the state advanced to now.
func (s *Simulator) locked(f func(st *state, now time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.st.advance(now)
	f(s.st, now)
}
