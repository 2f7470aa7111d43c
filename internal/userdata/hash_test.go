package userdata

import (
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func kubeconfig(t *testing.T, server, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[ns] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: []byte("CA")}
	cfg.AuthInfos["system:serviceaccount:"+ns+":fw-firewall-agent"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[ns] = &clientcmdapi.Context{Cluster: ns, AuthInfo: "system:serviceaccount:" + ns + ":fw-firewall-agent", Namespace: ns}
	cfg.CurrentContext = ns
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A token rotation changes the rendered bytes but not the hash, so firewalls do not roll;
// a new server does roll them. For a Secret that is not generated, every byte counts.
func TestGeneratedKubeconfigHashIgnoresToken(t *testing.T) {
	renderWith := func(kc string, generate bool) *Result {
		c := fromSecret("/etc/firewall-controller/seed.yaml", "agent", "")
		c.SecretRef.GenerateFirewallControllerKubeconfig = generate
		return render(t, New(newReader(secret("agent", map[string]string{"value": kc}))), specWith(c))
	}
	oldToken := renderWith(kubeconfig(t, "https://api:6443", "token-one"), true)
	newToken := renderWith(kubeconfig(t, "https://api:6443", "token-two"), true)
	newServer := renderWith(kubeconfig(t, "https://other:6443", "token-one"), true)

	if oldToken.Userdata == newToken.Userdata {
		t.Fatal("the new token is not in the userdata")
	}
	if oldToken.Hash != newToken.Hash {
		t.Error("a token rotation changes the hash")
	}
	if oldToken.Hash == newServer.Hash {
		t.Error("a new server does not change the hash")
	}

	plainOld := renderWith(kubeconfig(t, "https://api:6443", "token-one"), false)
	plainNew := renderWith(kubeconfig(t, "https://api:6443", "token-two"), false)
	if plainOld.Hash == plainNew.Hash {
		t.Error("a changed user-provided kubeconfig does not change the hash")
	}
}

func TestKubeconfigIdentityFallsBackForGarbage(t *testing.T) {
	if kubeconfigIdentity([]byte("{not yaml")) != sha256Hex([]byte("{not yaml")) {
		t.Error("unparsable content is not digested whole")
	}
}
