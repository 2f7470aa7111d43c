package agentaccess

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// The agent finds the Secret to refresh its token from in the kubeconfig itself.
func TestKubeconfigNamesItsSecret(t *testing.T) {
	p := params
	p.Secret, p.Key = "seed-kubeconfig", "value"
	data, err := buildKubeconfig(p, "the-token")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	ext, ok := cfg.Contexts[cfg.CurrentContext].Extensions[v2.KubeconfigTokenSecretExtension]
	if !ok {
		t.Fatalf("no %s extension in\n%s", v2.KubeconfigTokenSecretExtension, data)
	}
	unknown, ok := ext.(*runtime.Unknown)
	if !ok {
		t.Fatalf("extension decoded as %T", ext)
	}
	var ref v2.KubeconfigTokenSecret
	if err := json.Unmarshal(unknown.Raw, &ref); err != nil || ref.Name != "seed-kubeconfig" || ref.Key != "value" {
		t.Errorf("extension %s: %+v, %v", unknown.Raw, ref, err)
	}
	if tokenOf(data) != "the-token" {
		t.Error("the token is not where the agent looks")
	}
}
