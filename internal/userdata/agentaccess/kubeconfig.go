package agentaccess

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfigParams is everything in a generated kubeconfig but the token.
type kubeconfigParams struct {
	Server    string
	CAData    []byte
	Namespace string
	User      string
}

// buildKubeconfig renders a kubeconfig. Cluster and context are named after the namespace: the
// firewall-controller takes its namespace from the current context's name, and newer agents
// read the context's namespace field, which is set too. The output is deterministic.
func buildKubeconfig(p kubeconfigParams, token string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[p.Namespace] = &clientcmdapi.Cluster{Server: p.Server, CertificateAuthorityData: p.CAData}
	cfg.AuthInfos[p.User] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[p.Namespace] = &clientcmdapi.Context{Cluster: p.Namespace, AuthInfo: p.User, Namespace: p.Namespace}
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
