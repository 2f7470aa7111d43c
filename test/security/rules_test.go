package security

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/rbacrules"
)

// documented is every grant the markers may generate, by scope, as docs/security.md lists them.
// A new marker that asks for more fails here until the threat model is updated with it.
var documented = map[string][]string{
	"cluster": {
		"create events.events.k8s.io", "patch events.events.k8s.io",
		"create subjectaccessreviews.authorization.k8s.io", "create tokenreviews.authentication.k8s.io",
		"create namespaces", "get namespaces", "list namespaces", "watch namespaces",
		"get mutatingwebhookconfigurations.admissionregistration.k8s.io/palisade-mutating-webhook-configuration",
		"get mutatingwebhookconfigurations.admissionregistration.k8s.io/palisade-validating-webhook-configuration",
		"get validatingwebhookconfigurations.admissionregistration.k8s.io/palisade-mutating-webhook-configuration",
		"get validatingwebhookconfigurations.admissionregistration.k8s.io/palisade-validating-webhook-configuration",
		"update mutatingwebhookconfigurations.admissionregistration.k8s.io/palisade-mutating-webhook-configuration",
		"update mutatingwebhookconfigurations.admissionregistration.k8s.io/palisade-validating-webhook-configuration",
		"update validatingwebhookconfigurations.admissionregistration.k8s.io/palisade-mutating-webhook-configuration",
		"update validatingwebhookconfigurations.admissionregistration.k8s.io/palisade-validating-webhook-configuration",
		// Cluster API Clusters, read only: their spec.paused pauses the firewalls of the cluster.
		"get clusters.cluster.x-k8s.io", "list clusters.cluster.x-k8s.io", "watch clusters.cluster.x-k8s.io",
		// The manager's own API.
		"firewall.metal-stack.io: firewalldeployments firewalls firewallsets firewallmonitors and their status and finalizers",
	},
	"palisade-system": {"create secrets", "get secrets/palisade-webhook-tls", "update secrets/palisade-webhook-tls"},
	"served-namespace": {
		"get configmaps", "list configmaps", "watch configmaps",
		"create secrets", "delete secrets", "get secrets", "list secrets", "patch secrets", "update secrets", "watch secrets",
		"create serviceaccounts", "delete serviceaccounts", "get serviceaccounts", "list serviceaccounts", "patch serviceaccounts", "update serviceaccounts", "watch serviceaccounts",
		"create serviceaccounts/token",
		// Exporter Services and Endpoints in the monitor namespace (single-cluster mode).
		"create services", "get services", "patch services", "create endpoints", "get endpoints", "patch endpoints",
		"create roles.rbac.authorization.k8s.io", "delete roles.rbac.authorization.k8s.io", "get roles.rbac.authorization.k8s.io", "list roles.rbac.authorization.k8s.io",
		"patch roles.rbac.authorization.k8s.io", "update roles.rbac.authorization.k8s.io", "watch roles.rbac.authorization.k8s.io",
		"create rolebindings.rbac.authorization.k8s.io", "delete rolebindings.rbac.authorization.k8s.io", "get rolebindings.rbac.authorization.k8s.io", "list rolebindings.rbac.authorization.k8s.io",
		"patch rolebindings.rbac.authorization.k8s.io", "update rolebindings.rbac.authorization.k8s.io", "watch rolebindings.rbac.authorization.k8s.io",
	},
	// Gardener's egress CIDRs, in served namespaces named shoot--<project>--<name> only; the chart
	// names the Infrastructure (<name>) in each Role.
	"shoot-namespace": {
		"get infrastructures.extensions.gardener.cloud", "patch infrastructures/status.extensions.gardener.cloud",
		"get extensions.extensions.gardener.cloud/acl", "update extensions.extensions.gardener.cloud/acl",
	},
}

// ownAPI admits the manager's own kinds, with the verbs a controller needs and nothing exotic.
func ownAPI(g rbacrules.Grant) bool {
	kinds := []string{"firewalldeployments", "firewalls", "firewallsets", "firewallmonitors"}
	base, sub, _ := strings.Cut(g.Resource, "/")
	return g.Group == "firewall.metal-stack.io" && g.Name == "" && slices.Contains(kinds, base) &&
		(sub == "" || sub == "status" || sub == "finalizers") &&
		slices.Contains([]string{"get", "list", "watch", "create", "update", "patch", "delete"}, g.Verb)
}

// The rules the markers generate (config/rbac/role.yaml; `make verify-generated` keeps it equal
// to the markers) are exactly the documented ones: no wildcard, nothing cluster-wide that
// mints tokens or touches Secrets, ServiceAccounts or RBAC.
func TestGeneratedRulesAreNoBroaderThanDocumented(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		if strings.TrimSpace(strings.Trim(doc, "-\n")) == "" {
			continue
		}
		var role struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
			t.Fatal(err)
		}
		scope := role.Metadata.Namespace
		if role.Kind == "ClusterRole" {
			scope = "cluster"
		}
		allowed, ok := documented[scope]
		if !ok {
			t.Errorf("%s in undocumented scope %q", role.Kind, scope)
			continue
		}
		seen[scope] = true
		for _, g := range rbacrules.Expand(role.Rules) {
			if p := rbacrules.Problem(g); p != "" {
				t.Errorf("%s: %s: %s", scope, g, p)
			}
			if scope == "cluster" {
				if p := rbacrules.ClusterWideProblem(g); p != "" {
					t.Errorf("cluster-wide %s: %s", g, p)
				}
			}
			if !slices.Contains(allowed, g.String()) && !(scope == "cluster" && ownAPI(g)) {
				t.Errorf("%s: %s is not in the documented rules (docs/security.md)", scope, g)
			}
		}
	}
	for scope := range documented {
		if !seen[scope] {
			t.Errorf("config/rbac/role.yaml has no rules for scope %q", scope)
		}
	}
}
