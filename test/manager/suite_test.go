// Package manager runs the manager's controllers against the real API server (envtest) and the
// metal-api simulator over HTTP, and checks whole lifecycles: allocation, rolling updates,
// pause, faults and deletion.
//
// One shared manager reconciles every namespace without the ownManagerLabel. Specs that need
// their own manager (other timeouts, a restart) label their namespace and start one with
// startManager, whose namespace selector admits only that label value.
package manager

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv"
)

// ownManagerLabel on a namespace hands it to a manager started by startManager.
const ownManagerLabel = "test.palisade/manager"

var (
	env         *envtest.Environment
	restConfig  *rest.Config
	k8sClient   client.Client
	sim         *metalsim.Simulator
	metalClient metal.Client
	// simURL is the simulator's address, for specs that need a client of their own.
	simURL string
	ctx    context.Context
	cancel context.CancelFunc
)

func TestManager(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	RunSpecs(t, "Manager lifecycle")
}

// testOptions are the shared manager's options: fast polling, no timeouts, no safety backoff.
func testOptions() manager.Options {
	opts := manager.DefaultOptions()
	opts.Firewall.CreatingPoll = 300 * time.Millisecond
	opts.Firewall.RunningPoll = 2 * time.Second
	// A manager stopped between recording an allocation and sending it leaves a firewall that
	// waits this long before allocating (the restart spec waits 60 s; the default is 2 min).
	opts.Firewall.AllocationGrace = 10 * time.Second
	opts.SafetyBackoff = 0
	opts.Timeouts = fwutil.Timeouts{}
	return opts
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())

	var err error
	e, restCfg, err := testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	env, restConfig = e, restCfg

	sim = metalsim.New(metalsim.DefaultConfig())
	// The specs leave their deployments running; give them room beyond the default pool.
	_, err = sim.AddPoolMachines(metalsim.DefaultPartition, metalsim.DefaultSize, 40)
	Expect(err).NotTo(HaveOccurred())
	url, stop, err := sim.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(stop)
	simURL = url

	metalClient, err = metal.New(metal.Config{URL: url, HMACKey: "metal-admin-key", HMACAuthType: metal.AuthTypeAdmin, Timeout: 10 * time.Second})
	Expect(err).NotTo(HaveOccurred())

	opts := testOptions()
	opts.NamespaceSelector, err = labels.Parse("!" + ownManagerLabel)
	Expect(err).NotTo(HaveOccurred())
	var mgr ctrl.Manager
	mgr, _ = startManager(opts)
	k8sClient = mgr.GetClient()
})

// startManager starts a manager with the suite's simulator and opts; stop cancels it and waits
// until it has shut down.
func startManager(opts manager.Options) (ctrl.Manager, func()) {
	return startManagerWith(opts, metalClient, nil)
}

// startManagerWith starts a manager with its own metal-api client; tweak, when set, adjusts
// the controller-runtime options (leader election).
func startManagerWith(opts manager.Options, mc metal.Client, tweak func(*ctrl.Options)) (ctrl.Manager, func()) {
	copts := ctrl.Options{
		Scheme:                 testenv.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Several managers run in this process, one after the other or side by side.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	if tweak != nil {
		tweak(&copts)
	}
	mgr, err := ctrl.NewManager(restConfig, copts)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ExpectWithOffset(1, manager.Setup(mgr, mc, opts)).To(Succeed())
	mctx, mcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mctx)).To(Succeed())
	}()
	EventuallyWithOffset(1, func() bool { return mgr.GetCache().WaitForCacheSync(mctx) }).Should(BeTrue())
	return mgr, func() {
		mcancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			Fail("manager did not stop within 60s")
		}
	}
}

// startOwnManager starts a manager for the namespaces labelled ownManagerLabel=id.
func startOwnManager(id string, opts manager.Options) (ctrl.Manager, func()) {
	sel, err := labels.Parse(ownManagerLabel + "=" + id)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	opts.NamespaceSelector = sel
	return startManager(opts)
}

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// newNamespace creates a namespace for the shared manager.
func newNamespace(name string) string {
	return createNamespace(name, nil)
}

// newOwnNamespace creates a namespace for the manager started by startOwnManager(id, ...) and
// waits until that manager's cache has it.
func newOwnNamespace(name, id string, mgrs ...ctrl.Manager) string {
	ns := createNamespace(name, map[string]string{ownManagerLabel: id})
	for _, m := range mgrs {
		waitForNamespace(m.GetClient(), ns)
	}
	return ns
}

func createNamespace(name string, lbls map[string]string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-", Labels: lbls}}
	ExpectWithOffset(2, k8sClient.Create(ctx, ns)).To(Succeed())
	// The namespace selector reads namespaces from the cache: an object reconciled before its
	// namespace reached the cache would be skipped.
	waitForNamespace(k8sClient, ns.Name)
	return ns.Name
}

func waitForNamespace(c client.Client, name string) {
	EventuallyWithOffset(3, func() error {
		return c.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{})
	}).Should(Succeed())
}
