package agentaccess

import (
	"crypto/sha256"
	"encoding/hex"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// IdentityLabel is "true" on the agent ServiceAccounts, Roles and RoleBindings the manager
// writes. The manager's ValidatingAdmissionPolicy admits its writes of these kinds, and its
// token requests, only for objects that carry it (and agent ServiceAccount names).
const IdentityLabel = "firewall.metal-stack.io/agent-identity"

const (
	// AgentSuffix ends every agent ServiceAccount name; the admission policy checks it on
	// token requests, which carry no labels.
	AgentSuffix = agentSuffix
	agentSuffix = "-firewall-agent"
	// maxNameLength is the limit of ServiceAccount, Role and RoleBinding names.
	maxNameLength = 253
)

// ServiceAccountName is the name of the agent's ServiceAccount, Role and RoleBinding for deploy:
// "<deploy>-firewall-agent", shortened with a hash suffix when that would be too long.
func ServiceAccountName(deploy *v2.FirewallDeployment) string {
	name := deploy.Name + agentSuffix
	if len(name) <= maxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(deploy.Name))
	suffix := "-" + hex.EncodeToString(sum[:])[:10] + agentSuffix
	return deploy.Name[:maxNameLength-len(suffix)] + suffix
}

// userName is the kubeconfig user: the ServiceAccount's identity as the API server sees it.
func userName(namespace, serviceAccount string) string {
	return "system:serviceaccount:" + namespace + ":" + serviceAccount
}
