package agentaccess

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/userdata"
)

// ShootCluster is the workload cluster (Gardener: the shoot) of a FirewallDeployment, as the
// manager reaches it with its own shoot identity.
type ShootCluster struct {
	// Client writes; Reader reads from the API server (no cache, so no cluster-wide informers).
	Client client.Client
	Reader client.Reader
	// Namespace is the firewall namespace of the shoot ("firewall"): the identity, its Role and
	// the FirewallMonitors live there.
	Namespace string
	// Server and CAData are how the firewalls reach the shoot's API server.
	Server string
	CAData []byte
	// Shared is true when the workload cluster is the manager's own (single-cluster mode), which
	// the deployments of many namespaces share.
	Shared bool
}

// ShootConnector returns the workload cluster of deploy.
type ShootConnector func(ctx context.Context, deploy *v2.FirewallDeployment) (*ShootCluster, error)

// ShootOwnerAnnotation marks the shoot-side objects with the seed deployment they belong to
// ("<namespace>/<name>"); owner references cannot cross clusters, and objects of the same name
// marked for another deployment (or not at all) are not taken over.
const ShootOwnerAnnotation = "firewall.metal-stack.io/seed-deployment"

// ShootIdentityName is the name of the firewall-controller's ServiceAccount, Role, RoleBinding,
// ClusterRole and ClusterRoleBinding in the shoot: upstream's name for them, qualified with
// the seed namespace when the cluster is shared by many namespaces.
func ShootIdentityName(deploy *v2.FirewallDeployment, shared bool) string {
	name := userdata.UpstreamShootAccessPrefix + deploy.Name
	if shared {
		name = userdata.UpstreamShootAccessPrefix + deploy.Namespace + "-" + deploy.Name
	}
	if len(name) <= maxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:])[:10]
	return name[:maxNameLength-len(suffix)] + suffix
}

// ShootClusterRules are what the upstream firewall-controller does across the shoot: read
// every Service (LoadBalancer addresses become rules) and the ClusterwideNetworkPolicies
// (its validation pass looks at them in every namespace to report misplaced ones), and record
// events about them wherever they are.
func ShootClusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"clusterwidenetworkpolicies"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

// ShootNamespaceRules are what it does in the firewall namespace only: report the policies'
// status, follow the droptailer (its pod and client certificate Secret), keep its FQDN state
// in ConfigMaps, publish the exporters as Services with manual Endpoints, and write its report
// into its FirewallMonitor.
func ShootNamespaceRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"clusterwidenetworkpolicies/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods", "secrets"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps", "services", "endpoints"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
		{APIGroups: []string{v2.GroupVersion.Group}, Resources: []string{"firewallmonitors"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
	}
}

// ensureShootKubeconfig provisions the firewall-controller's identity in deploy's shoot and
// writes its kubeconfig into Secret name in the seed namespace, refreshed like the seed
// kubeconfig. It returns when to refresh it.
func (a *AgentAccess) ensureShootKubeconfig(ctx context.Context, deploy *v2.FirewallDeployment, name string) (time.Time, error) {
	if a.Shoot == nil {
		return time.Time{}, fmt.Errorf("Secret %q asks for a shoot kubeconfig, but the manager has no workload cluster access", name)
	}
	shoot, err := a.Shoot(ctx, deploy)
	if err != nil {
		return time.Time{}, fmt.Errorf("connecting to the workload cluster: %w", err)
	}
	sa, err := a.ensureShootRBAC(ctx, deploy, shoot)
	if err != nil {
		return time.Time{}, fmt.Errorf("workload cluster: %w", err)
	}
	params := kubeconfigParams{
		Server: shoot.Server,
		CAData: shoot.CAData,
		// Named after the seed namespace as upstream names it; the default namespace is the
		// shoot's firewall namespace.
		Namespace:        deploy.Namespace,
		ContextNamespace: shoot.Namespace,
		User:             userName(shoot.Namespace, sa.Name),
	}
	request := func(ctx context.Context, now time.Time) (string, tokenState, error) {
		return a.requestTokenWith(ctx, now, a.tokenTTLFor(deploy), sa.Name, func(ctx context.Context, req *authenticationv1.TokenRequest) error {
			return shoot.Client.SubResource("token").Create(ctx, sa, req)
		})
	}
	return a.writeKubeconfig(ctx, deploy, string(sa.UID), name, []string{v2.DefaultUserdataKey}, params, request)
}

// ensureShootRBAC creates or updates the ServiceAccount, Role, RoleBinding, ClusterRole and
// ClusterRoleBinding of the firewall-controller in the shoot, and the firewall namespace.
func (a *AgentAccess) ensureShootRBAC(ctx context.Context, deploy *v2.FirewallDeployment, shoot *ShootCluster) (*corev1.ServiceAccount, error) {
	ns := &corev1.Namespace{}
	if err := shoot.Reader.Get(ctx, client.ObjectKey{Name: shoot.Namespace}, ns); apierrors.IsNotFound(err) {
		ns.Name = shoot.Namespace
		if err := shoot.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating namespace %q: %w", shoot.Namespace, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading namespace %q: %w", shoot.Namespace, err)
	}

	name := ShootIdentityName(deploy, shoot.Shared)
	meta := metav1.ObjectMeta{Name: name, Namespace: shoot.Namespace}
	sa := &corev1.ServiceAccount{ObjectMeta: meta}
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: shoot.Namespace}}
	role := &rbacv1.Role{ObjectMeta: meta}
	binding := &rbacv1.RoleBinding{ObjectMeta: meta}
	clusterRole := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
	clusterBinding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, step := range []struct {
		obj    client.Object
		mutate func()
	}{
		{sa, func() {}},
		{role, func() { role.Rules = ShootNamespaceRules() }},
		{binding, func() {
			binding.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}
			binding.Subjects = subjects
		}},
		{clusterRole, func() { clusterRole.Rules = ShootClusterRules() }},
		{clusterBinding, func() {
			clusterBinding.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
			clusterBinding.Subjects = subjects
		}},
	} {
		if err := shootCreateOrUpdate(ctx, shoot, deploy, step.obj, step.mutate); err != nil {
			return nil, err
		}
	}
	return sa, nil
}

// shootCreateOrUpdate reads obj from the shoot's API server and creates or updates it, refusing
// objects that belong to another deployment.
func shootCreateOrUpdate(ctx context.Context, shoot *ShootCluster, deploy *v2.FirewallDeployment, obj client.Object, mutate func()) error {
	owner := deploy.Namespace + "/" + deploy.Name
	err := shoot.Reader.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading %s %q: %w", kindOf(obj), obj.GetName(), err)
	}
	if exists && obj.GetAnnotations()[ShootOwnerAnnotation] != owner {
		return fmt.Errorf("not taking over %s %q: it exists and does not belong to FirewallDeployment %s", kindOf(obj), obj.GetName(), owner)
	}
	before := obj.DeepCopyObject()
	mutate()
	labels, annotations := obj.GetLabels(), obj.GetAnnotations()
	if labels == nil {
		labels = map[string]string{}
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	labels[IdentityLabel], annotations[ShootOwnerAnnotation] = "true", owner
	obj.SetLabels(labels)
	obj.SetAnnotations(annotations)
	if !exists {
		err = shoot.Client.Create(ctx, obj)
	} else if !equality.Semantic.DeepEqual(before, obj) {
		err = shoot.Client.Update(ctx, obj)
	}
	if err != nil {
		return fmt.Errorf("ensuring %s %q: %w", kindOf(obj), obj.GetName(), err)
	}
	return nil
}

// ManagerShootRules are what the manager's own shoot identity needs (Gardener: the
// ClusterRole bound to the identity of -shoot-token-secret-name): the FirewallMonitors and their
// namespace, and the firewall-controller's identity above. RBAC lets it grant only what it
// holds, so the identity also needs ShootClusterRules and ShootNamespaceRules (in the firewall
// namespace at least), as upstream's shoot ClusterRole has them.
func ManagerShootRules() []rbacv1.PolicyRule {
	write := []string{"get", "create", "update"}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{v2.GroupVersion.Group}, Resources: []string{"firewallmonitors"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "create"}},
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: write},
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}},
		{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles", "rolebindings", "clusterroles", "clusterrolebindings"}, Verbs: write},
	}
}
