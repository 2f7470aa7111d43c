package manager

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/firewall"
	"github.com/palisade-fw/palisade/internal/userdata"
)

func TestUserdataReadyNamesEveryMissingSource(t *testing.T) {
	present := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "present", Namespace: "ns"}, Data: map[string][]byte{"value": []byte("TOP-SECRET")}}
	settings := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "ns"}, Data: map[string]string{"other": "x"}}
	adapter := UserdataAdapter{Renderer: userdata.New(fake.NewClientBuilder().WithObjects(present, settings).Build())}
	entry := func(path string, secret, configMap, key string) v2.UserdataContent {
		c := v2.UserdataContent{Path: path}
		if secret != "" {
			c.SecretRef = &v2.UserdataSecretRef{Name: secret, Key: key}
		} else {
			c.ConfigMapRef = &v2.UserdataConfigMapRef{Name: configMap, Key: key}
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		contents []v2.UserdataContent
		reason   string
		message  string
	}{
		{
			name:     "one missing Secret",
			contents: []v2.UserdataContent{entry("/etc/a", "absent", "", ""), entry("/etc/ok", "present", "", "")},
			reason:   v2.ReasonSecretMissing, message: `Secret "absent" (key "value") not found`,
		},
		{
			name: "every missing Secret, ConfigMap and key, by path",
			contents: []v2.UserdataContent{
				entry("/etc/c", "", "settings", "wanted"),
				entry("/etc/a", "shoot-kubeconfig", "", ""),
				entry("/etc/ok", "present", "", ""),
				entry("/etc/b", "", "absent-cm", "k"),
				entry("/etc/d", "present", "", "nope"),
			},
			reason: v2.ReasonSecretMissing,
			message: `4 sources missing: Secret "shoot-kubeconfig" (key "value") not found; ConfigMap "absent-cm" (key "k") not found; ` +
				`ConfigMap "settings" has no key "wanted"; Secret "present" has no key "nope"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := adapter.Render(context.Background(), "ns", &v2.FirewallSpec{UserdataContents: tc.contents})
			var ue *firewall.UserdataError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is not a UserdataError", err)
			}
			if ue.Reason != tc.reason || ue.Message != tc.message {
				t.Errorf("got %s %q\nwant %s %q", ue.Reason, ue.Message, tc.reason, tc.message)
			}
		})
	}
}
