package kube

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/userdata/agentaccess"
)

// An agent follows the manager's token rotation: it reads its Secret with the old token and
// switches its running clients to the new one.
func TestTokenRefresherFollowsRotation(t *testing.T) {
	env, cfg, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()
	admin, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shoot--proj--token"}}
	deploy := &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: "fw", Namespace: ns.Name},
		Spec: v2.FirewallDeploymentSpec{Replicas: 1, Template: v2.FirewallTemplateSpec{Spec: v2.FirewallSpec{
			Size: "s", Image: "i", Partition: "p", Project: "pr", Networks: []string{"internet"},
			UserdataContents: []v2.UserdataContent{{Path: "/etc/firewall-controller/seed.yaml",
				SecretRef: &v2.UserdataSecretRef{Name: "seed-kubeconfig", Key: "value", GenerateFirewallControllerKubeconfig: true}}},
		}}},
	}
	for _, obj := range []client.Object{ns, deploy} {
		if err := admin.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	access := &agentaccess.AgentAccess{Client: admin, Clientset: clientset, APIServerURL: cfg.Host, CAData: cfg.CAData,
		TokenTTL: agentaccess.MinTokenTTL, Now: func() time.Time { return now }}
	secretData := func() []byte {
		t.Helper()
		if _, err := access.Ensure(ctx, deploy); err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "seed-kubeconfig"}, s); err != nil {
			t.Fatal(err)
		}
		return s.Data["value"]
	}

	path := filepath.Join(t.TempDir(), "seed.yaml")
	first := secretData()
	if err := os.WriteFile(path, first, 0o600); err != nil {
		t.Fatal(err)
	}
	agentCfg, err := RestConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if agentCfg.BearerToken != "" || agentCfg.BearerTokenFile != tokenFileFor(path) {
		t.Fatalf("the token is not served from its file: token set %v, file %q", agentCfg.BearerToken != "", agentCfg.BearerTokenFile)
	}
	// The agent's Role names its objects (its firewalls, the Secrets its userdata references;
	// no firewall exists here), so the client is checked on the Secret it may read.
	agent, err := client.New(agentCfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "seed-kubeconfig"}, &corev1.Secret{}); err != nil {
		t.Fatalf("the agent's client does not work: %v", err)
	}

	refresher := &TokenRefresher{Path: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if changed, err := refresher.Refresh(ctx); err != nil || changed {
		t.Fatalf("nothing rotated yet: changed %v, err %v", changed, err)
	}
	if d := refresher.nextCheck(now); d < MinTokenRefreshInterval || d > MaxTokenRefreshInterval {
		t.Errorf("next check in %s, outside [%s, %s]", d, MinTokenRefreshInterval, MaxTokenRefreshInterval)
	}

	now = now.Add(agentaccess.MinTokenTTL * 3 / 4) // past two thirds: the manager rotates
	second := secretData()
	if string(second) == string(first) {
		t.Fatal("the manager did not rotate the token")
	}
	if changed, err := refresher.Refresh(ctx); err != nil || !changed {
		t.Fatalf("rotation not followed: changed %v, err %v", changed, err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(second) {
		t.Error("the kubeconfig file was not replaced")
	}
	token, _ := os.ReadFile(tokenFileFor(path))
	if want := tokenIn(t, second); string(token) != want {
		t.Error("the token file does not hold the new token")
	}
	if info, err := os.Stat(tokenFileFor(path)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("token file mode: %v, %v", info.Mode(), err)
	}
	if err := agent.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "seed-kubeconfig"}, &corev1.Secret{}); err != nil {
		t.Fatalf("the running client broke after the rotation: %v", err)
	}
}

func tokenIn(t *testing.T, kubeconfig []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(tokenFileFor(path))
	if err == nil {
		return string(token)
	}
	cfg, err := RestConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	token, err = os.ReadFile(cfg.BearerTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(token)
}
