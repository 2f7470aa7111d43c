package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
	"github.com/palisade-fw/palisade/internal/webhook"
)

// The suite runs the real API server with the generated CRDs and webhook configurations
// (config/webhook, from `make manifests`) and serves the webhooks over TLS from a manager.
var (
	k8sClient client.Client
	warnings  = &warningRecorder{}
	ctx       context.Context
	// webhooks is the manager serving the webhooks; a test may stop and restart it.
	webhooks *webhookServer
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	logf.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	var cancel context.CancelFunc
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()

	env, err := testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "config", "webhook")}}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		return 1
	}
	defer func() {
		cancel()
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()

	webhooks = &webhookServer{cfg: cfg, opts: &env.WebhookInstallOptions}
	if err := webhooks.start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer webhooks.stop()

	clientCfg := rest.CopyConfig(cfg)
	clientCfg.WarningHandlerWithContext = warnings
	k8sClient, err = client.New(clientCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, ns := range []string{"firewall", "shoot--proj--name"} {
		if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// webhookServer runs a manager that serves the webhooks, and can stop it (the API server then
// sees the webhook endpoint down, as when the manager is not running) and start it again.
type webhookServer struct {
	cfg  *rest.Config
	opts *envtest.WebhookInstallOptions

	cancel context.CancelFunc
	done   chan struct{}
}

func (w *webhookServer) start() error {
	mgr, err := ctrl.NewManager(w.cfg, ctrl.Options{
		Scheme:  testenv.Scheme(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host:    w.opts.LocalServingHost,
			Port:    w.opts.LocalServingPort,
			CertDir: w.opts.LocalServingCertDir,
		}),
	})
	if err != nil {
		return err
	}
	if err := webhook.SetupWebhooksWithManager(mgr); err != nil {
		return err
	}
	mgrCtx, cancel := context.WithCancel(ctx)
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		if err := mgr.Start(mgrCtx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return harness.WaitForTLS(net.JoinHostPort(w.opts.LocalServingHost, fmt.Sprint(w.opts.LocalServingPort)))
}

// stop stops the manager and returns once its webhook server no longer listens.
func (w *webhookServer) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.cancel = nil
}

// warningRecorder collects the API server's warning headers (admission webhook warnings).
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// take returns the warnings since the last call and forgets them.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}
