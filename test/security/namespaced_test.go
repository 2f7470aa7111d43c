package security

import (
	"context"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
	"github.com/palisade-fw/palisade/internal/testenv/helmtool"
)

// Gardener's deployment model: one manager per shoot namespace with a namespaced Role only (no
// ClusterRole at all), started with --namespace. The chart installed into the shoot namespace
// renders that Role; here only the namespaced objects and the release's admission policy are
// applied, and a second manager runs as the release's ServiceAccount next to the suite's.
func TestNamespacedRoleAloneRunsTheManager(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(90 * time.Second)
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	const shoot, release = "shoot--proj--cluster", "shoot"
	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shoot}})).To(Succeed())
	objs, err := helmtool.Template(release, shoot, "--set", "webhook.enabled=false", "--set", "leaderElection.enabled=false", "--set", "replicaCount=1")
	g.Expect(err).NotTo(HaveOccurred())
	serviceAccount := ""
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" {
			serviceAccount = o.GetName()
		}
		namespaced := slices.Contains([]string{"ServiceAccount", "Role", "RoleBinding"}, o.GetKind())
		policy := slices.Contains([]string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}, o.GetKind())
		if namespaced || policy {
			g.Expect(admin.Create(ctx, o)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
		}
	}

	opts := harness.TestOptions()
	opts.Namespaces = []string{shoot}
	opts.Monitors.Disabled = true // Gardener's monitors go to the shoot, not tested here
	mgrOpts := ctrl.Options{
		Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Logger: harness.TestLogger(), Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	manager.ScopeCaches(&mgrOpts, opts.Namespaces)
	g.Expect(serviceAccount).NotTo(BeEmpty())
	mgr, err := ctrl.NewManager(impersonate(stack.Config, shoot, serviceAccount), mgrOpts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(manager.Setup(mgr, stack.Metal, opts)).To(Succeed())
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() { cancel(); <-done }()

	deploy := deployment("edge")
	deploy.Namespace = shoot
	deploy.Spec.Template.Spec.UserdataContents = []v2.UserdataContent{{Path: "/etc/firewall-controller/seed.yaml",
		SecretRef: &v2.UserdataSecretRef{Name: "edge-seed-kubeconfig", GenerateFirewallControllerKubeconfig: true}}}
	g.Expect(admin.Create(ctx, deploy)).To(Succeed())
	firewallsOf(g, deploy, 1)
	g.Eventually(func(g Gomega) {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(deploy), deploy)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(deploy.Status.Conditions, v2.ConditionRBACProvisioned)).To(BeTrue())
	}).Should(Succeed(), "the manager provisions the agent identity with the namespaced Role alone")
	select {
	case err := <-done:
		t.Fatalf("the namespaced manager stopped: %v", err)
	default:
	}
}
