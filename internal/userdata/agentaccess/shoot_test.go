package agentaccess

import (
	"context"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/userdata"
)

// startShoot starts a second API server standing in for the shoot, with Palisade's CRDs (the
// FirewallMonitor and ClusterwideNetworkPolicy ones, which GEPM installs in every shoot).
func startShoot(t *testing.T) (client.Client, *ShootCluster) {
	t.Helper()
	env, shootCfg, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(shootCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	server := shootCfg.Host
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	return c, &ShootCluster{Client: c, Reader: c, Namespace: "firewall", Server: server, CAData: shootCfg.CAData}
}

func gardenerDeployment(namespace string) *v2.FirewallDeployment {
	deploy := deployment(namespace, "shoot-firewall",
		generatedRef(userdata.UpstreamSeedKubeconfigPath, userdata.UpstreamSeedAccessPrefix+"shoot-firewall"),
		secretRef(userdata.UpstreamShootKubeconfigPath, userdata.UpstreamShootAccessPrefix+"shoot-firewall"))
	deploy.Labels = map[string]string{v2.GardenerShootNamespaceLabel: namespace}
	return deploy
}

// The shoot kubeconfig generated for a Gardener deployment works against the shoot, in the
// upstream layout (cluster, context and user named after the seed namespace), and its identity
// may do exactly what the upstream firewall-controller does in the shoot: nothing in other
// namespaces but reading Services and policies and recording events, no writes of policies, no
// Secrets outside the firewall namespace, no nodes, no RBAC, no tokens.
func TestShootKubeconfigIsLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	shootAdmin, shoot := startShoot(t)
	ns := createNamespace(t, ctx)
	deploy := gardenerDeployment(ns)
	mustCreate(t, ctx, deploy)

	c := &clock{t: time.Now()}
	access := newAccess(c)
	access.Shoot = func(context.Context, *v2.FirewallDeployment) (*ShootCluster, error) { return shoot, nil }
	if _, err := access.Ensure(ctx, deploy); err != nil {
		t.Fatal(err)
	}

	secret := &corev1.Secret{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "firewall-controller-shoot-access-shoot-firewall"}, secret); err != nil {
		t.Fatal(err)
	}
	if secret.Labels[userdata.GeneratedKubeconfigLabel] != "true" {
		t.Errorf("the shoot kubeconfig Secret is not labelled as generated: %v", secret.Labels)
	}
	kubeconfig := secret.Data[v2.DefaultUserdataKey]
	loaded, err := clientcmd.Load(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.CurrentContext != ns || loaded.Clusters[ns] == nil || loaded.Clusters[ns].Server != shoot.Server {
		t.Fatalf("kubeconfig context %q, clusters %v: want the seed namespace and the shoot's server", loaded.CurrentContext, loaded.Clusters)
	}
	fc, defaultNamespace := agentClient(t, kubeconfig)
	if defaultNamespace != "firewall" {
		t.Errorf("default namespace %q, want firewall", defaultNamespace)
	}

	// What the firewall-controller does, as real requests.
	policy := &v1.ClusterwideNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow-dns", Namespace: "firewall"}}
	if err := shootAdmin.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}
	monitor := &v2.FirewallMonitor{ObjectMeta: metav1.ObjectMeta{Name: ns + "-firewall-abcde", Namespace: "firewall"}}
	if err := shootAdmin.Create(ctx, monitor); err != nil {
		t.Fatal(err)
	}
	var services corev1.ServiceList
	if err := fc.List(ctx, &services); err != nil {
		t.Errorf("listing Services cluster-wide: %v", err)
	}
	var policies v1.ClusterwideNetworkPolicyList
	if err := fc.List(ctx, &policies); err != nil || len(policies.Items) != 1 {
		t.Errorf("listing policies: %v (%d)", err, len(policies.Items))
	}
	policy.Status.State = "deployed"
	if err := fc.Status().Update(ctx, policy); err != nil {
		t.Errorf("writing the policy status: %v", err)
	}
	monitor.ControllerStatus = &v2.ControllerStatus{ControllerVersion: "v2.5.0", Updated: metav1.Now()}
	if err := fc.Update(ctx, monitor); err != nil {
		t.Errorf("writing the monitor report: %v", err)
	}
	exporter := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "node-exporter", Namespace: "firewall"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "nodeexporter", Port: 9100}}}}
	if err := fc.Create(ctx, exporter); err != nil {
		t.Errorf("publishing an exporter Service: %v", err)
	}

	allowed := []authorizationv1.ResourceAttributes{
		{Verb: "list", Resource: "services"},
		{Verb: "watch", Group: "metal-stack.io", Resource: "clusterwidenetworkpolicies"},
		{Verb: "create", Resource: "events", Namespace: "default"},
		{Verb: "patch", Group: "events.k8s.io", Resource: "events", Namespace: "firewall"},
		{Verb: "update", Group: "metal-stack.io", Resource: "clusterwidenetworkpolicies", Subresource: "status", Namespace: "firewall"},
		{Verb: "watch", Resource: "pods", Namespace: "firewall"},
		{Verb: "get", Resource: "secrets", Namespace: "firewall", Name: "droptailer-client"},
		{Verb: "create", Resource: "configmaps", Namespace: "firewall"},
		{Verb: "update", Resource: "endpoints", Namespace: "firewall"},
		{Verb: "patch", Group: "firewall.metal-stack.io", Resource: "firewallmonitors", Namespace: "firewall"},
	}
	denied := []authorizationv1.ResourceAttributes{
		{Verb: "get", Resource: "secrets", Namespace: "kube-system"},
		{Verb: "list", Resource: "secrets"},
		{Verb: "list", Resource: "pods"},
		{Verb: "list", Resource: "nodes"},
		{Verb: "create", Resource: "pods", Namespace: "firewall"},
		{Verb: "delete", Resource: "services", Namespace: "firewall"},
		{Verb: "create", Resource: "services", Namespace: "default"},
		{Verb: "create", Resource: "configmaps", Namespace: "default"},
		{Verb: "create", Group: "metal-stack.io", Resource: "clusterwidenetworkpolicies", Namespace: "firewall"},
		{Verb: "update", Group: "metal-stack.io", Resource: "clusterwidenetworkpolicies", Namespace: "firewall"},
		{Verb: "delete", Group: "metal-stack.io", Resource: "clusterwidenetworkpolicies", Namespace: "firewall"},
		{Verb: "update", Group: "metal-stack.io", Resource: "clusterwidenetworkpolicies", Subresource: "status", Namespace: "default"},
		{Verb: "create", Group: "firewall.metal-stack.io", Resource: "firewallmonitors", Namespace: "firewall"},
		{Verb: "delete", Group: "firewall.metal-stack.io", Resource: "firewallmonitors", Namespace: "firewall"},
		{Verb: "update", Group: "firewall.metal-stack.io", Resource: "firewallmonitors", Namespace: "default"},
		{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: "firewall", Name: ShootIdentityName(deploy, false)},
		{Verb: "list", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		{Verb: "update", Group: "rbac.authorization.k8s.io", Resource: "roles", Namespace: "firewall"},
		{Verb: "list", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
		{Verb: "list", Resource: "namespaces"},
		{Verb: "get", Group: "firewall.metal-stack.io", Resource: "firewalls", Namespace: "firewall"},
	}
	for want, attrs := range map[bool][]authorizationv1.ResourceAttributes{true: allowed, false: denied} {
		for _, a := range attrs {
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}
			if err := fc.Create(ctx, review); err != nil {
				t.Fatal(err)
			}
			if review.Status.Allowed != want {
				t.Errorf("%s %s/%s/%s in %q: allowed=%v, want %v", a.Verb, a.Group, a.Resource, a.Subresource, a.Namespace, review.Status.Allowed, want)
			}
		}
	}
}

// A token refresh rewrites the shoot kubeconfig without changing the userdata hash (no roll),
// and a second Ensure before the refresh writes nothing. Shoot-side objects of another
// deployment are not taken over.
func TestShootKubeconfigRefreshAndOwnership(t *testing.T) {
	ctx := context.Background()
	_, shoot := startShoot(t)
	ns := createNamespace(t, ctx)
	deploy := gardenerDeployment(ns)
	mustCreate(t, ctx, deploy)
	c := &clock{t: time.Now()}
	access := newAccess(c)
	access.Shoot = func(context.Context, *v2.FirewallDeployment) (*ShootCluster, error) { return shoot, nil }
	renderer := userdata.New(k8sClient)
	key := client.ObjectKey{Namespace: ns, Name: "firewall-controller-shoot-access-shoot-firewall"}

	if _, err := access.Ensure(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	first := &corev1.Secret{}
	if err := k8sClient.Get(ctx, key, first); err != nil {
		t.Fatal(err)
	}
	before, err := renderer.Render(ctx, ns, &deploy.Spec.Template.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := access.Ensure(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	again := &corev1.Secret{}
	if err := k8sClient.Get(ctx, key, again); err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != first.ResourceVersion {
		t.Error("a second Ensure before the refresh rewrote the shoot kubeconfig")
	}

	c.t = c.t.Add(50 * time.Minute) // past two thirds of the hour
	if _, err := access.Ensure(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	refreshed := &corev1.Secret{}
	if err := k8sClient.Get(ctx, key, refreshed); err != nil {
		t.Fatal(err)
	}
	if tokenOf(refreshed.Data["value"]) == tokenOf(first.Data["value"]) {
		t.Fatal("the token was not refreshed")
	}
	after, err := renderer.Render(ctx, ns, &deploy.Spec.Template.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if after.Userdata == before.Userdata || after.Hash != before.Hash {
		t.Errorf("a refreshed token must change the userdata but not its hash (changed userdata %v, same hash %v)",
			after.Userdata != before.Userdata, after.Hash == before.Hash)
	}

	otherNS := createNamespace(t, ctx)
	other := gardenerDeployment(otherNS)
	mustCreate(t, ctx, other)
	if _, err := access.Ensure(ctx, other); err == nil || !strings.Contains(err.Error(), "not taking over") {
		t.Errorf("a second seed namespace's deployment of the same name took over the shoot identity: %v", err)
	}
}

// The upstream firewall-controller reads its two kubeconfigs once, at boot: a Gardener
// deployment in the upstream layout gets tokens of UpstreamTokenTTL (the API server's answer
// is what the Secret records), every other deployment keeps TokenTTL.
func TestUpstreamLayoutTokensLiveLonger(t *testing.T) {
	ctx := context.Background()
	_, shoot := startShoot(t)
	ns := createNamespace(t, ctx)
	gardener := gardenerDeployment(ns)
	plain := deployment(ns, "plain", generatedRef("/etc/firewall-controller/seed.yaml", "plain-kubeconfig"))
	mustCreate(t, ctx, gardener, plain)
	c := &clock{t: time.Now()}
	access := newAccess(c) // TokenTTL one hour
	access.UpstreamTokenTTL = 30 * 24 * time.Hour
	access.Shoot = func(context.Context, *v2.FirewallDeployment) (*ShootCluster, error) { return shoot, nil }

	next, err := access.Ensure(ctx, gardener)
	if err != nil {
		t.Fatal(err)
	}
	if next < 19*24*time.Hour {
		t.Errorf("next refresh of the upstream-layout tokens in %v, want about two thirds of 30 days", next)
	}
	if _, err := access.Ensure(ctx, plain); err != nil {
		t.Fatal(err)
	}
	lifetime := func(name string) time.Duration {
		t.Helper()
		s := &corev1.Secret{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			t.Fatal(err)
		}
		expiry, err := time.Parse(time.RFC3339, s.Annotations[userdata.TokenExpiryAnnotation])
		if err != nil {
			t.Fatal(err)
		}
		return time.Until(expiry)
	}
	for _, name := range []string{userdata.UpstreamSeedAccessPrefix + gardener.Name, userdata.UpstreamShootAccessPrefix + gardener.Name} {
		if got := lifetime(name); got < 29*24*time.Hour || got > 31*24*time.Hour {
			t.Errorf("Secret %s: token valid for %v, want 30 days", name, got)
		}
	}
	if got := lifetime("plain-kubeconfig"); got > 2*time.Hour {
		t.Errorf("a deployment outside the upstream layout got a token valid for %v, want TokenTTL (1h)", got)
	}
}
