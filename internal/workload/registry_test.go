package workload

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/scheme"
)

func TestParseSecretRef(t *testing.T) {
	for in, want := range map[string]SecretRef{
		"mycluster-kubeconfig":                {Name: "mycluster-kubeconfig", Key: "value"},
		"generic-token-kubeconfig/kubeconfig": {Name: "generic-token-kubeconfig", Key: "kubeconfig"},
	} {
		got, err := ParseSecretRef(in)
		if err != nil || got != want {
			t.Errorf("ParseSecretRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Upper", "name/", "name/bad key", "a/b/c"} {
		if _, err := ParseSecretRef(bad); err == nil {
			t.Errorf("ParseSecretRef(%q) accepted", bad)
		}
	}
}

// Gardener's shape: a generic kubeconfig that reads its token from a file, and a token Secret.
const genericKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: shoot, cluster: {server: "https://api.shoot.example"}}]
users: [{name: shoot, user: {tokenFile: /var/run/secrets/gardener.cloud/shoot/generic-kubeconfig/token}}]
contexts: [{name: shoot, context: {cluster: shoot, user: shoot}}]
current-context: shoot
`

func TestGardenerTokenKubeconfig(t *testing.T) {
	ns := "shoot--proj--name"
	kubeconfig := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "generic-token-kubeconfig", Namespace: ns},
		Data: map[string][]byte{"kubeconfig": []byte(genericKubeconfig)}}
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shoot-access-firewall-controller-manager", Namespace: ns},
		Data: map[string][]byte{"token": []byte("token-1")}}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(kubeconfig).Build()
	r := &Registry{Seed: c, DefaultSecret: "generic-token-kubeconfig/kubeconfig", TokenSecret: token.Name}
	fw := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Name: "fw", Namespace: ns}}
	ctx := context.Background()

	_, _, err := r.resolve(ctx, fw)
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.Reason != ReasonKubeconfigMissing {
		t.Fatalf("without the token Secret: %v, want %s", err, ReasonKubeconfigMissing)
	}

	if err := c.Create(ctx, token); err != nil {
		t.Fatal(err)
	}
	key1, cfg, err := r.resolve(ctx, fw)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BearerToken != "token-1" || cfg.BearerTokenFile != "" || cfg.Host != "https://api.shoot.example" {
		t.Errorf("config: host %q, token file %q, token set %v", cfg.Host, cfg.BearerTokenFile, cfg.BearerToken != "")
	}

	token.Data["token"] = []byte("token-2")
	if err := c.Update(ctx, token); err != nil {
		t.Fatal(err)
	}
	key2, _, err := r.resolve(ctx, fw)
	if err != nil {
		t.Fatal(err)
	}
	if key1.ref != key2.ref || key1.full == key2.full {
		t.Errorf("a refreshed token must replace the connection of the same reference: %+v, %+v", key1, key2)
	}
}

func TestAnnotationOverridesDefault(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.New()).Build()
	r := &Registry{Seed: c, DefaultSecret: "default-kubeconfig"}
	fw := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Name: "fw", Namespace: "ns",
		Annotations: map[string]string{v2.WorkloadKubeconfigAnnotation: "own-kubeconfig"}}}
	_, _, err := r.resolve(context.Background(), fw)
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.Reason != ReasonKubeconfigMissing || !strings.Contains(ue.Message, "own-kubeconfig") {
		t.Fatalf("got %v, want the annotation's Secret reported missing", err)
	}
	local := &Registry{Seed: c, Local: &rest.Config{Host: "https://seed.example"}}
	if key, cfg, err := local.resolve(context.Background(), &v2.Firewall{}); err != nil || !key.local || cfg.Host != "https://seed.example" {
		t.Errorf("no reference at all must mean single-cluster mode: %+v, %v", key, err)
	}
}
