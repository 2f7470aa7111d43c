// Package manager runs the manager's controllers against the real API server (envtest) and the
// metal-api simulator over HTTP, and checks whole lifecycles: allocation, rolling updates,
// pause, faults and deletion.
package manager

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
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

var (
	env       *envtest.Environment
	k8sClient client.Client
	sim       *metalsim.Simulator
	ctx       context.Context
	cancel    context.CancelFunc
)

func TestManager(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	RunSpecs(t, "Manager lifecycle")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())

	var err error
	e, restCfg, err := testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	env = e

	sim = metalsim.New(metalsim.DefaultConfig())
	url, stop, err := sim.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(stop)

	metalClient, err := metal.New(metal.Config{URL: url, HMACKey: "metal-admin-key", HMACAuthType: metal.AuthTypeAdmin, Timeout: 10 * time.Second})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 testenv.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())
	opts := manager.DefaultOptions()
	opts.Firewall.CreatingPoll = 300 * time.Millisecond
	opts.Firewall.RunningPoll = 2 * time.Second
	opts.SafetyBackoff = 0
	opts.Timeouts = fwutil.Timeouts{}
	Expect(manager.Setup(mgr, metalClient, opts)).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	k8sClient = mgr.GetClient()
	Eventually(func() bool { return mgr.GetCache().WaitForCacheSync(ctx) }).Should(BeTrue())
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

func newNamespace(name string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-"}}
	ExpectWithOffset(1, k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}
