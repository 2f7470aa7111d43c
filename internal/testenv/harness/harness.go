// Package harness runs Palisade's manager the way production does (internal/manager.Setup),
// against the real API server (envtest) and the metal-api simulator over HTTP, with the
// admission webhooks served over TLS when asked. End-to-end tests and the demo share it, so
// they exercise one wiring.
package harness

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/webhook"
)

// Options configure a Stack.
type Options struct {
	// Webhooks installs config/webhook into the API server and serves the webhooks over TLS.
	Webhooks bool
	// Simulator configures metal-api; nil means metalsim.DefaultConfig().
	Simulator *metalsim.Config
	// Manager adjusts the manager options after the test defaults (fast polling, no backoff).
	Manager func(*manager.Options)
	// Logger is the manager's logger; the zero value discards.
	Logger logr.Logger
	// ManagerConfig, when set, turns the API server's admin config into the one the manager
	// runs with (test/security impersonates the chart's ServiceAccount).
	ManagerConfig func(*rest.Config) *rest.Config
}

// Stack is one API server, one simulator and one (restartable) manager.
type Stack struct {
	Env    *envtest.Environment
	Config *rest.Config
	// Client talks to the API server directly (no cache), as a user would.
	Client client.Client
	Sim    *metalsim.Simulator
	SimURL string
	Metal  metal.Client

	opts    Options
	stopSim func()

	mu      sync.Mutex
	stopMgr context.CancelFunc
	mgrDone chan error
}

// MetalAdminKey is the simulator's Metal-Admin HMAC key in its default configuration.
const MetalAdminKey = "metal-admin-key"

// Start brings up the API server and the simulator, then the manager.
func Start(opts Options) (*Stack, error) {
	s := New(opts)
	for _, start := range []func() error{s.StartAPIServer, s.StartSimulator, s.StartManager} {
		if err := start(); err != nil {
			return nil, errors.Join(err, s.Stop())
		}
	}
	return s, nil
}

// New returns a stack that is not started; Start*, in order, bring up its parts (the demo
// reports each step).
func New(opts Options) *Stack { return &Stack{opts: opts} }

// StartAPIServer starts envtest with the CRDs (and the webhook configurations) installed.
func (s *Stack) StartAPIServer() error {
	env, err := testenv.New()
	if err != nil {
		return err
	}
	if s.opts.Webhooks {
		root, err := testenv.RepoRoot()
		if err != nil {
			return err
		}
		env.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "config", "webhook")}}
	}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting envtest: %w", err)
	}
	s.Env, s.Config = env, cfg
	s.Client, err = client.New(s.Config, client.Options{Scheme: testenv.Scheme()})
	return err
}

// StartSimulator starts metal-api and the manager's client for it.
func (s *Stack) StartSimulator() error {
	simCfg := metalsim.DefaultConfig()
	if s.opts.Simulator != nil {
		simCfg = *s.opts.Simulator
	}
	s.Sim = metalsim.New(simCfg)
	var err error
	if s.SimURL, s.stopSim, err = s.Sim.Start(); err != nil {
		return fmt.Errorf("starting the metal-api simulator: %w", err)
	}
	s.Metal, err = metal.New(metal.Config{URL: s.SimURL, HMACKey: MetalAdminKey, HMACAuthType: metal.AuthTypeAdmin, Timeout: 10 * time.Second})
	return err
}

// TestOptions are the manager defaults for tests: fast polling, no safety backoff, no
// timeouts (tests that need them set them through Options.Manager).
func TestOptions() manager.Options {
	opts := manager.DefaultOptions()
	opts.Firewall.CreatingPoll = 300 * time.Millisecond
	opts.Firewall.RunningPoll = 2 * time.Second
	// The simulator completes an allocation within milliseconds; a firewall deleted while its
	// allocation's outcome is unknown need not wait the production grace of two minutes.
	opts.Firewall.AllocationGrace = 10 * time.Second
	opts.SafetyBackoff = 0
	opts.Timeouts = fwutil.Timeouts{}
	return opts
}

// StartManager starts a manager; a running one is stopped first (a restart).
func (s *Stack) StartManager() error {
	s.StopManager()
	mgrOpts := ctrl.Options{
		Scheme:                 testenv.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 s.opts.Logger,
		// A restart registers the same controller names again in this process, and several stacks
		// may run in one test process (the clusterctl move test runs two).
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	wio := &s.Env.WebhookInstallOptions
	if s.opts.Webhooks {
		mgrOpts.WebhookServer = crwebhook.NewServer(crwebhook.Options{Host: wio.LocalServingHost, Port: wio.LocalServingPort, CertDir: wio.LocalServingCertDir})
	}
	opts := TestOptions()
	if s.opts.Manager != nil {
		s.opts.Manager(&opts)
	}
	manager.ScopeCaches(&mgrOpts, opts.Namespaces)
	cfg := rest.CopyConfig(s.Config)
	if s.opts.ManagerConfig != nil {
		cfg = s.opts.ManagerConfig(cfg)
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return err
	}
	if s.opts.Webhooks {
		if err := webhook.SetupWebhooksWithManager(mgr); err != nil {
			return err
		}
	}
	if err := manager.Setup(mgr, s.Metal, opts); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	s.mu.Lock()
	s.stopMgr, s.mgrDone = cancel, done
	s.mu.Unlock()

	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	defer cancelSync()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		return errors.New("manager caches did not sync")
	}
	if s.opts.Webhooks {
		return WaitForTLS(net.JoinHostPort(wio.LocalServingHost, fmt.Sprint(wio.LocalServingPort)))
	}
	return nil
}

// StopManager stops the manager and waits until it returned.
func (s *Stack) StopManager() {
	s.mu.Lock()
	stop, done := s.stopMgr, s.mgrDone
	s.stopMgr, s.mgrDone = nil, nil
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// Stop stops everything that was started.
func (s *Stack) Stop() error {
	s.StopManager()
	if s.stopSim != nil {
		s.stopSim()
	}
	if s.Env == nil {
		return nil
	}
	return s.Env.Stop()
}

// WriteKubeconfig writes a cluster-admin kubeconfig for the API server to path (kubectl).
func (s *Stack) WriteKubeconfig(path string) error {
	user, err := s.Env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, kc, 0o600)
}

// WaitForTLS waits until the webhook server at addr answers a TLS handshake.
func WaitForTLS(addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // readiness probe only
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhook server at %s did not come up: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
