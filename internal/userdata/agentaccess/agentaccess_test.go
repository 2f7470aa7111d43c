package agentaccess

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/userdata"
)

func deployment(namespace, name string, contents ...v2.UserdataContent) *v2.FirewallDeployment {
	return &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v2.FirewallDeploymentSpec{
			Replicas: 1,
			Selector: map[string]string{"app": name},
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       firewallSpec(contents...),
			},
		},
	}
}

func firewallSpec(contents ...v2.UserdataContent) v2.FirewallSpec {
	return v2.FirewallSpec{
		Size: "n1-medium-x86", Image: "firewall-ubuntu-3.0", Partition: "partition-a",
		Project: "00000000-0000-0000-0000-000000000001", Networks: []string{"internet"},
		UserdataContents: contents,
	}
}

func firewall(namespace, name string) *v2.Firewall {
	return &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: firewallSpec()}
}

// ownedFirewall creates a FirewallSet controlled by deploy and a Firewall controlled by the set,
// as the set and deployment controllers would.
func ownedFirewall(t *testing.T, ctx context.Context, deploy *v2.FirewallDeployment, setName, name string) *v2.Firewall {
	t.Helper()
	set := &v2.FirewallSet{ObjectMeta: metav1.ObjectMeta{Name: setName, Namespace: deploy.Namespace}}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(set), set); apierrors.IsNotFound(err) {
		set.Spec.Template.Spec = firewallSpec()
		if err := controllerutil.SetControllerReference(deploy, set, k8sClient.Scheme()); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, ctx, set)
	} else if err != nil {
		t.Fatal(err)
	}
	fw := firewall(deploy.Namespace, name)
	if err := controllerutil.SetControllerReference(set, fw, k8sClient.Scheme()); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, fw)
	return fw
}

func generatedRef(path, secret string) v2.UserdataContent {
	return v2.UserdataContent{Path: path, SecretRef: &v2.UserdataSecretRef{Name: secret, GenerateFirewallControllerKubeconfig: true}}
}

func secretRef(path, secret string) v2.UserdataContent {
	return v2.UserdataContent{Path: path, SecretRef: &v2.UserdataSecretRef{Name: secret}}
}

func createNamespace(t *testing.T, ctx context.Context) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "agentaccess-"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func mustCreate(t *testing.T, ctx context.Context, objs ...client.Object) {
	t.Helper()
	for _, obj := range objs {
		if err := k8sClient.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

// clock is a settable clock for AgentAccess.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newAccess(c *clock) *AgentAccess {
	server := cfg.Host
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	return &AgentAccess{Client: k8sClient, Clientset: clientset, APIServerURL: server, CAData: cfg.CAData, TokenTTL: time.Hour, Now: c.now}
}

// agentClient builds a client from a generated kubeconfig, as the agent on the firewall would.
func agentClient(t *testing.T, kubeconfig []byte) (client.Client, string) {
	t.Helper()
	loader, err := clientcmd.Load(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cc := clientcmd.NewDefaultClientConfig(*loader, &clientcmd.ConfigOverrides{})
	restCfg, err := cc.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	namespace, _, err := cc.Namespace()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(restCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c, namespace
}

func TestGeneratedKubeconfigIsLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	own, other := createNamespace(t, ctx), createNamespace(t, ctx)
	deploy := deployment(own, "edge",
		generatedRef("/etc/firewall-controller/seed.yaml", "edge-seed-kubeconfig"),
		secretRef("/etc/firewall-controller/shoot.yaml", "shoot-kubeconfig"),
	)
	mustCreate(t, ctx, deploy)
	ownedFirewall(t, ctx, deploy, "edge-1", "edge-firewall-abcde")
	sibling := deployment(own, "sibling")
	mustCreate(t, ctx, sibling)
	ownedFirewall(t, ctx, sibling, "sibling-1", "sibling-firewall-fghij")
	mustCreate(t, ctx,
		firewall(own, "standalone-firewall"),
		firewall(other, "foreign-firewall"),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shoot-kubeconfig", Namespace: own}, StringData: map[string]string{"value": "shoot"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: own}, StringData: map[string]string{"value": "x"}},
	)

	clk := &clock{t: time.Now()}
	requeue, err := newAccess(clk).Ensure(ctx, deploy)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	// Refresh at two thirds of the one hour lifetime; a few seconds of slack for rounding.
	if requeue < 39*time.Minute || requeue > 41*time.Minute {
		t.Errorf("requeue after %v, want about 40m", requeue)
	}

	var secret corev1.Secret
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: own, Name: "edge-seed-kubeconfig"}, &secret); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(&secret, deploy) {
		t.Error("generated Secret has no controller reference to the deployment")
	}
	if secret.Labels[userdata.GeneratedKubeconfigLabel] != "true" {
		t.Errorf("labels %v", secret.Labels)
	}
	expiry, err := time.Parse(time.RFC3339, secret.Annotations[userdata.TokenExpiryAnnotation])
	if err != nil || expiry.Before(clk.t.Add(50*time.Minute)) || expiry.After(clk.t.Add(70*time.Minute)) {
		t.Errorf("token expiry annotation %q (%v) is not about an hour ahead", secret.Annotations[userdata.TokenExpiryAnnotation], err)
	}
	kubeconfig := secret.Data[v2.DefaultUserdataKey]
	if len(kubeconfig) == 0 {
		t.Fatalf("no kubeconfig under the default key, keys: %v", secret.Data)
	}

	agent, namespace := agentClient(t, kubeconfig)
	if namespace != own {
		t.Errorf("kubeconfig namespace %q, want %q", namespace, own)
	}

	t.Run("reads its own firewall", func(t *testing.T) {
		var fw v2.Firewall
		if err := agent.Get(ctx, client.ObjectKey{Namespace: own, Name: "edge-firewall-abcde"}, &fw); err != nil {
			t.Fatalf("get own firewall: %v", err)
		}
		// The agent watches its firewall by name; resourceNames admit that list.
		var list v2.FirewallList
		if err := agent.List(ctx, &list, client.InNamespace(own), client.MatchingFields{"metadata.name": "edge-firewall-abcde"}); err != nil || len(list.Items) != 1 {
			t.Errorf("list own firewall by name: %v (%d items)", err, len(list.Items))
		}
		fw.Status.Phase = "Running"
		if err := agent.Status().Update(ctx, &fw); err != nil {
			t.Errorf("update own firewall status: %v", err)
		}
	})
	t.Run("cannot change firewall specs", func(t *testing.T) {
		var fw v2.Firewall
		if err := agent.Get(ctx, client.ObjectKey{Namespace: own, Name: "edge-firewall-abcde"}, &fw); err != nil {
			t.Fatal(err)
		}
		fw.Spec.Image = "evil"
		expectForbidden(t, agent.Update(ctx, &fw))
	})
	t.Run("cannot touch a sibling firewall", func(t *testing.T) {
		for _, name := range []string{"sibling-firewall-fghij", "standalone-firewall"} {
			var fw v2.Firewall
			expectForbidden(t, agent.Get(ctx, client.ObjectKey{Namespace: own, Name: name}, &fw))
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: own, Name: name}, &fw); err != nil {
				t.Fatal(err)
			}
			fw.Status.Phase = "Running"
			expectForbidden(t, agent.Status().Update(ctx, &fw))
			expectForbidden(t, agent.Status().Patch(ctx, &fw, client.RawPatch("application/merge-patch+json", []byte(`{"status":{"phase":"Crashing"}}`))))
		}
		expectForbidden(t, agent.List(ctx, &v2.FirewallList{}, client.InNamespace(own)))
		expectForbidden(t, agent.List(ctx, &v2.FirewallSetList{}, client.InNamespace(own)))
	})
	t.Run("follows a roll", func(t *testing.T) {
		ownedFirewall(t, ctx, deploy, "edge-2", "edge-firewall-klmno")
		if _, err := newAccess(clk).Ensure(ctx, deploy); err != nil {
			t.Fatal(err)
		}
		if err := agent.Get(ctx, client.ObjectKey{Namespace: own, Name: "edge-firewall-klmno"}, &v2.Firewall{}); err != nil {
			t.Errorf("the new set's firewall is not readable after the roll: %v", err)
		}
		old := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Namespace: own, Name: "edge-firewall-klmno"}}
		if err := k8sClient.Delete(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := newAccess(clk).Ensure(ctx, deploy); err != nil {
			t.Fatal(err)
		}
		var role rbacv1.Role
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: own, Name: ServiceAccountName(deploy)}, &role); err != nil {
			t.Fatal(err)
		}
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "firewalls") && !slices.Equal(r.ResourceNames, []string{"edge-firewall-abcde"}) {
				t.Errorf("after the firewall went, the Role still names %v", r.ResourceNames)
			}
		}
		if role.Labels[IdentityLabel] != "true" {
			t.Errorf("Role labels %v miss %s", role.Labels, IdentityLabel)
		}
	})
	t.Run("denied in another namespace", func(t *testing.T) {
		expectForbidden(t, agent.Get(ctx, client.ObjectKey{Namespace: other, Name: "foreign-firewall"}, &v2.Firewall{}))
	})
	t.Run("secrets only by name", func(t *testing.T) {
		expectForbidden(t, agent.List(ctx, &corev1.SecretList{}, client.InNamespace(own)))
		expectForbidden(t, agent.Get(ctx, client.ObjectKey{Namespace: own, Name: "unrelated"}, &corev1.Secret{}))
		for _, name := range []string{"edge-seed-kubeconfig", "shoot-kubeconfig"} {
			if err := agent.Get(ctx, client.ObjectKey{Namespace: own, Name: name}, &corev1.Secret{}); err != nil {
				t.Errorf("get referenced Secret %s: %v", name, err)
			}
		}
	})

	t.Run("unchanged before the refresh point", func(t *testing.T) {
		clk.t = clk.t.Add(30 * time.Minute)
		requeue, err := newAccess(clk).Ensure(ctx, deploy)
		if err != nil {
			t.Fatal(err)
		}
		if requeue < 9*time.Minute || requeue > 11*time.Minute {
			t.Errorf("requeue after %v, want about 10m", requeue)
		}
		var again corev1.Secret
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(&secret), &again); err != nil {
			t.Fatal(err)
		}
		if again.ResourceVersion != secret.ResourceVersion {
			t.Error("the Secret was rewritten although its token is still fresh")
		}
	})

	t.Run("refresh keeps the userdata hash", func(t *testing.T) {
		renderer := userdata.New(k8sClient)
		before, err := renderer.Render(ctx, own, &deploy.Spec.Template.Spec)
		if err != nil {
			t.Fatal(err)
		}
		clk.t = clk.t.Add(15 * time.Minute) // 45 of 60 minutes: less than a third left
		if _, err := newAccess(clk).Ensure(ctx, deploy); err != nil {
			t.Fatal(err)
		}
		var refreshed corev1.Secret
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(&secret), &refreshed); err != nil {
			t.Fatal(err)
		}
		if string(refreshed.Data[v2.DefaultUserdataKey]) == string(kubeconfig) {
			t.Fatal("the token was not refreshed")
		}
		after, err := renderer.Render(ctx, own, &deploy.Spec.Template.Spec)
		if err != nil {
			t.Fatal(err)
		}
		if after.Userdata == before.Userdata {
			t.Error("the rendered userdata does not carry the new token")
		}
		if after.Hash != before.Hash {
			t.Error("a token refresh changed the userdata hash and would roll the firewalls")
		}
		newAgent, _ := agentClient(t, refreshed.Data[v2.DefaultUserdataKey])
		if err := newAgent.Get(ctx, client.ObjectKey{Namespace: own, Name: "edge-firewall-abcde"}, &v2.Firewall{}); err != nil {
			t.Errorf("refreshed kubeconfig does not work: %v", err)
		}
	})

	t.Run("RBAC is owned by the deployment", func(t *testing.T) {
		name := ServiceAccountName(deploy)
		for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}} {
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: own, Name: name}, obj); err != nil {
				t.Fatal(err)
			}
			if !metav1.IsControlledBy(obj, deploy) {
				t.Errorf("%T has no controller reference", obj)
			}
		}
	})

	t.Run("identity removed with the last generated kubeconfig", func(t *testing.T) {
		deploy.Spec.Template.Spec.UserdataContents = deploy.Spec.Template.Spec.UserdataContents[1:]
		requeue, err := newAccess(clk).Ensure(ctx, deploy)
		if err != nil || requeue != 0 {
			t.Fatalf("Ensure: %v, requeue %v", err, requeue)
		}
		for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}} {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: own, Name: ServiceAccountName(deploy)}, obj)
			if !apierrors.IsNotFound(err) {
				t.Errorf("%T still there: %v", obj, err)
			}
		}
		err = k8sClient.Get(ctx, client.ObjectKeyFromObject(&secret), &corev1.Secret{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("stale generated Secret still there: %v", err)
		}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: own, Name: "shoot-kubeconfig"}, &corev1.Secret{}); err != nil {
			t.Errorf("user Secret touched: %v", err)
		}
	})
}

func TestEnsureDoesNotOverwriteForeignSecret(t *testing.T) {
	ctx := context.Background()
	ns := createNamespace(t, ctx)
	deploy := deployment(ns, "edge", generatedRef("/etc/firewall-controller/seed.yaml", "taken"))
	mustCreate(t, ctx, deploy, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ns}, StringData: map[string]string{"value": "user data"}})

	_, err := newAccess(&clock{t: time.Now()}).Ensure(ctx, deploy)
	if err == nil || !strings.Contains(err.Error(), `"taken"`) {
		t.Fatalf("want an error naming the Secret, got %v", err)
	}
	var s corev1.Secret
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "taken"}, &s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data["value"]) != "user data" {
		t.Error("foreign Secret was overwritten")
	}
}

func TestEnsureWritesEveryKeyOfOneSecret(t *testing.T) {
	ctx := context.Background()
	ns := createNamespace(t, ctx)
	a := generatedRef("/etc/a.yaml", "agent")
	b := generatedRef("/etc/b.yaml", "agent")
	b.SecretRef.Key = "second"
	deploy := deployment(ns, "edge", a, b)
	mustCreate(t, ctx, deploy)

	if _, err := newAccess(&clock{t: time.Now()}).Ensure(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "agent"}, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Data["value"]) == 0 || string(s.Data["value"]) != string(s.Data["second"]) {
		t.Errorf("keys differ or are empty: %v", s.Data)
	}
	res, err := userdata.New(k8sClient).Render(ctx, ns, &deploy.Spec.Template.Spec)
	if err != nil {
		t.Fatalf("Render after Ensure: %v", err)
	}
	if strings.Join(res.Files, ",") != "/etc/a.yaml,/etc/b.yaml" {
		t.Errorf("files %v", res.Files)
	}
}

func expectForbidden(t *testing.T, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("want Forbidden, got %v", err)
	}
}
