// Package security proves the trust boundaries of docs/security.md against a real API server
// that enforces RBAC and admission policies: the manager runs as the chart's ServiceAccount
// (impersonated) with exactly the RBAC and ValidatingAdmissionPolicy that `helm template`
// renders, and every test asks the API server, never a model of it.
package security

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
	"github.com/palisade-fw/palisade/internal/testenv/helmtool"
)

const (
	releaseName      = "palisade"
	releaseNamespace = "palisade-system"
	// tenantNamespace is served by the manager; unrelatedNamespace is not.
	tenantNamespace    = "tenant-a"
	unrelatedNamespace = "kube-system"
	// monitorNamespace holds the FirewallMonitors (single-cluster mode), served as well.
	monitorNamespace = "firewall"
	// The chart's ServiceAccount is the release's full name.
	managerServiceAccount = "palisade"
)

// managerUser is the identity the manager's pods run as.
var managerUser = "system:serviceaccount:" + releaseNamespace + ":" + managerServiceAccount

var (
	stack *harness.Stack
	// admin talks to the API server as the envtest administrator (system:masters).
	admin client.Client
	// asManager talks to it as the manager's ServiceAccount.
	asManager client.Client
	ctx       = context.Background()
	// rbacKinds are the chart objects applied: the manager's identity and rights only.
	rbacKinds = []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
)

// impersonate returns cfg acting as a ServiceAccount, with the groups the API server gives one.
func impersonate(cfg *rest.Config, namespace, name string) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	return cfg
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	stack = harness.New(harness.Options{
		Logger: harness.TestLogger(),
		Manager: func(o *manager.Options) {
			o.Namespaces = []string{tenantNamespace, monitorNamespace}
			o.Firewall.ConnectedThreshold = time.Hour // reports in these tests are written once
			o.Firewall.SeedConnectedThreshold = time.Hour
		},
		ManagerConfig: func(cfg *rest.Config) *rest.Config {
			return impersonate(cfg, releaseNamespace, managerServiceAccount)
		},
	})
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "security suite:", err)
		_ = stack.Stop()
		return 1
	}
	defer func() { _ = stack.Stop() }()
	return m.Run()
}

func setup() error {
	if err := stack.StartAPIServer(); err != nil {
		return err
	}
	admin = stack.Client
	for _, ns := range []string{releaseNamespace, tenantNamespace, monitorNamespace} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	objs, err := helmtool.Template(releaseName, releaseNamespace, "--set", "namespaces={"+tenantNamespace+","+monitorNamespace+"}")
	if err != nil {
		return err
	}
	applied := 0
	for _, o := range objs {
		if !slices.Contains(rbacKinds, o.GetKind()) {
			continue
		}
		if err := admin.Create(ctx, o); err != nil {
			return fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		applied++
	}
	if applied < 8 {
		return fmt.Errorf("the chart rendered only %d RBAC and policy objects", applied)
	}
	asManager, err = client.New(impersonate(stack.Config, releaseNamespace, managerServiceAccount), client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return err
	}
	if err := waitForPolicy(); err != nil {
		return err
	}
	if err := stack.StartSimulator(); err != nil {
		return err
	}
	return stack.StartManager()
}

// waitForPolicy waits until the admission policy is enforced: a dry-run create of a Secret the
// manager did not label, which RBAC alone allows, is denied.
func waitForPolicy() error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: tenantNamespace}}
		err := asManager.Create(ctx, probe, client.DryRunAll)
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			if isPolicyDenial(err) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the ValidatingAdmissionPolicy is not enforced after 2m (last answer: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// isPolicyDenial tells a ValidatingAdmissionPolicy denial from an RBAC one.
func isPolicyDenial(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) && strings.Contains(status.Status().Message, "ValidatingAdmissionPolicy")
}

// expectDenied fails unless err is the API server refusing the request: Forbidden by RBAC or
// by the admission policy (which the API server reports as Forbidden or Invalid).
func expectDenied(g Gomega, err error, what string) {
	g.ExpectWithOffset(1, apierrors.IsForbidden(err) || (apierrors.IsInvalid(err) && isPolicyDenial(err))).To(BeTrue(), "%s: want denied, got %v", what, err)
}

// expectPolicyDenied fails unless the admission policy (not RBAC) refused the request: RBAC
// allows it, so this proves the policy is the boundary.
func expectPolicyDenied(g Gomega, err error, what string) {
	g.ExpectWithOffset(1, isPolicyDenial(err)).To(BeTrue(), "%s: want denied by the admission policy, got %v", what, err)
}

// expectRBACDenied fails unless RBAC refused the request.
func expectRBACDenied(g Gomega, err error, what string) {
	g.ExpectWithOffset(1, apierrors.IsForbidden(err) && !isPolicyDenial(err)).To(BeTrue(), "%s: want Forbidden by RBAC, got %v", what, err)
}
