package agentaccess

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// kubeconfigParams is everything in a generated kubeconfig but the token.
type kubeconfigParams struct {
	Server    string
	CAData    []byte
	Namespace string
	// ContextNamespace is the context's default namespace; empty means Namespace.
	ContextNamespace string
	User             string
	// Secret and Key name where the kubeconfig is stored, for the agent's token refresh.
	Secret, Key string
}

// buildKubeconfig renders a kubeconfig. Cluster and context are named after the namespace: the
// firewall-controller takes its namespace from the current context's name, and newer agents
// read the context's namespace field, which is set too. The output is deterministic.
func buildKubeconfig(p kubeconfigParams, token string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[p.Namespace] = &clientcmdapi.Cluster{Server: p.Server, CertificateAuthorityData: p.CAData}
	cfg.AuthInfos[p.User] = &clientcmdapi.AuthInfo{Token: token}
	defaultNamespace := p.ContextNamespace
	if defaultNamespace == "" {
		defaultNamespace = p.Namespace
	}
	cfg.Contexts[p.Namespace] = &clientcmdapi.Context{Cluster: p.Namespace, AuthInfo: p.User, Namespace: defaultNamespace}
	if p.Secret != "" {
		raw, err := json.Marshal(v2.KubeconfigTokenSecret{Name: p.Secret, Key: p.Key})
		if err != nil {
			return nil, err
		}
		cfg.Contexts[p.Namespace].Extensions = map[string]runtime.Object{
			v2.KubeconfigTokenSecretExtension: &runtime.Unknown{Raw: raw, ContentType: runtime.ContentTypeJSON},
		}
	}
	cfg.CurrentContext = p.Namespace
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		// Never wrap anything that could print the token.
		return nil, fmt.Errorf("encoding the agent kubeconfig failed")
	}
	return b, nil
}

// tokenOf returns the token of the current context's user, or "" when data is no kubeconfig.
func tokenOf(data []byte) string {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return ""
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return ""
	}
	user, ok := cfg.AuthInfos[ctx.AuthInfo]
	if !ok {
		return ""
	}
	return user.Token
}
