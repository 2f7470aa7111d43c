package firewall

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func TestShootAccess(t *testing.T) {
	fw := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Namespace: "shoot--proj--name", Name: "fw"}}
	for _, tc := range []struct {
		name    string
		cfg     ShootAccessConfig
		want    *v2.ShootAccess
		secrets []string
	}{
		{name: "not configured"},
		{name: "no URL: nothing published", cfg: ShootAccessConfig{GenericKubeconfigSecret: "generic", TokenSecret: "token"}},
		{name: "no kubeconfig Secret: nothing published", cfg: ShootAccessConfig{APIServerURL: "https://api.shoot"}},
		{
			name: "Gardener",
			cfg:  ShootAccessConfig{GenericKubeconfigSecret: "generic/kubeconfig", TokenSecret: "shoot-access-firewall-controller-manager", APIServerURL: "https://api.shoot"},
			want: &v2.ShootAccess{GenericKubeconfigSecretName: "generic", TokenSecretName: "shoot-access-firewall-controller-manager",
				Namespace: "shoot--proj--name", APIServerURL: "https://api.shoot"},
			secrets: []string{"generic", "shoot-access-firewall-controller-manager"},
		},
		{
			name:    "complete kubeconfig without token Secret",
			cfg:     ShootAccessConfig{GenericKubeconfigSecret: "kc", APIServerURL: "https://api.shoot"},
			want:    &v2.ShootAccess{GenericKubeconfigSecretName: "kc", Namespace: "shoot--proj--name", APIServerURL: "https://api.shoot"},
			secrets: []string{"kc"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.cfg.For(fw)); diff != "" {
				t.Errorf("For (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.secrets, tc.cfg.Secrets()); diff != "" {
				t.Errorf("Secrets (-want +got):\n%s", diff)
			}
		})
	}
}
