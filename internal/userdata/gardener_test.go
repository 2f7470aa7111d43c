package userdata

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func TestShootKubeconfigSecret(t *testing.T) {
	shootEntry := v2.UserdataContent{Path: UpstreamShootKubeconfigPath, SecretRef: &v2.UserdataSecretRef{Name: "firewall-controller-shoot-access-shoot-firewall"}}
	for _, tc := range []struct {
		name     string
		labelled bool
		entry    v2.UserdataContent
		want     bool
	}{
		{"what the webhook writes", true, shootEntry, true},
		{"the MetalStackCluster form of it", true, v2.UserdataContent{Path: UpstreamShootKubeconfigPath, SecretName: "firewall-controller-shoot-access-shoot-firewall"}, true},
		{"not a Gardener deployment", false, shootEntry, false},
		{"another Secret", true, v2.UserdataContent{Path: UpstreamShootKubeconfigPath, SecretRef: &v2.UserdataSecretRef{Name: "my-secret"}}, false},
		{"another path", true, v2.UserdataContent{Path: "/etc/other", SecretRef: shootEntry.SecretRef}, false},
		{"a generated seed kubeconfig", true, v2.UserdataContent{Path: UpstreamShootKubeconfigPath,
			SecretRef: &v2.UserdataSecretRef{Name: "firewall-controller-shoot-access-shoot-firewall", GenerateFirewallControllerKubeconfig: true}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deploy := &v2.FirewallDeployment{ObjectMeta: metav1.ObjectMeta{Name: "shoot-firewall", Namespace: "shoot--p--n"}}
			if tc.labelled {
				deploy.Labels = map[string]string{v2.GardenerShootNamespaceLabel: "shoot--p--n"}
			}
			deploy.Spec.Template.Spec.UserdataContents = []v2.UserdataContent{tc.entry}
			name, ok := ShootKubeconfigSecret(deploy)
			if ok != tc.want || (ok && name != "firewall-controller-shoot-access-shoot-firewall") {
				t.Errorf("got %q, %v; want %v", name, ok, tc.want)
			}
		})
	}
}
