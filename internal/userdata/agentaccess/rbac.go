package agentaccess

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/userdata"
)

// AgentRules is what the agent may do in its deployment's namespace: read and write the status
// of exactly the deployment's own Firewalls, and get exactly the Secrets its userdata
// references, so that it can pick up a refreshed token or a rotated workload kubeconfig. The
// agent watches its Firewall with a metadata.name field selector, which resourceNames admit
// for list and watch. Every rule names its objects: an empty resourceNames list would grant
// all of them, so a rule without names is left out.
func AgentRules(firewallNames, secretNames []string) []rbacv1.PolicyRule {
	group := v2.GroupVersion.Group
	var rules []rbacv1.PolicyRule
	if len(firewallNames) > 0 {
		rules = append(rules,
			rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{"firewalls"}, Verbs: []string{"get", "list", "watch"}, ResourceNames: firewallNames},
			rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{"firewalls/status"}, Verbs: []string{"get", "update", "patch"}, ResourceNames: firewallNames},
		)
	}
	if len(secretNames) > 0 {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: secretNames})
	}
	return rules
}

// UpstreamControllerRule lets the upstream firewall-controller (what Gardener's firewall images
// run) find its Firewall: it lists and watches the Firewalls of its namespace without a name
// selector. Gardener gives every shoot a seed namespace of its own, so the Firewalls it can read
// are its own shoot's; status writes stay limited to the deployment's own Firewalls by name.
func UpstreamControllerRule() rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{v2.GroupVersion.Group}, Resources: []string{"firewalls"}, Verbs: []string{"list", "watch"}}
}

// ownFirewalls returns the names of the Firewalls of deploy's sets, sorted. The Role follows
// them: a roll adds the new set's firewalls and drops the deleted ones.
func (a *AgentAccess) ownFirewalls(ctx context.Context, deploy *v2.FirewallDeployment) ([]string, error) {
	var sets v2.FirewallSetList
	if err := a.Client.List(ctx, &sets, client.InNamespace(deploy.Namespace)); err != nil {
		return nil, fmt.Errorf("listing FirewallSets: %w", err)
	}
	own := map[string]bool{}
	for i := range sets.Items {
		if metav1.IsControlledBy(&sets.Items[i], deploy) {
			own[sets.Items[i].Name] = true
		}
	}
	var fws v2.FirewallList
	if err := a.Client.List(ctx, &fws, client.InNamespace(deploy.Namespace)); err != nil {
		return nil, fmt.Errorf("listing Firewalls: %w", err)
	}
	var names []string
	for i := range fws.Items {
		if owner := metav1.GetControllerOf(&fws.Items[i]); owner != nil && owner.Kind == "FirewallSet" && own[owner.Name] {
			names = append(names, fws.Items[i].Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// ensureRBAC creates or updates the agent's ServiceAccount, Role and RoleBinding and returns
// the ServiceAccount.
func (a *AgentAccess) ensureRBAC(ctx context.Context, deploy *v2.FirewallDeployment) (*corev1.ServiceAccount, error) {
	name := ServiceAccountName(deploy)
	meta := metav1.ObjectMeta{Name: name, Namespace: deploy.Namespace}

	sa := &corev1.ServiceAccount{ObjectMeta: meta}
	if err := a.createOrUpdate(ctx, deploy, sa, func() {}); err != nil {
		return nil, err
	}

	firewalls, err := a.ownFirewalls(ctx, deploy)
	if err != nil {
		return nil, err
	}
	role := &rbacv1.Role{ObjectMeta: meta}
	rules := AgentRules(firewalls, append(userdata.ReferencedSecrets(&deploy.Spec.Template.Spec), a.ShootAccessSecrets...))
	if _, gardener := deploy.Labels[v2.GardenerShootNamespaceLabel]; gardener {
		rules = append(rules, UpstreamControllerRule())
	}
	if err := a.createOrUpdate(ctx, deploy, role, func() { role.Rules = rules }); err != nil {
		return nil, err
	}

	binding := &rbacv1.RoleBinding{ObjectMeta: meta}
	err = a.createOrUpdate(ctx, deploy, binding, func() {
		// The role reference is immutable; it never changes for a given name.
		binding.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}
		binding.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: deploy.Namespace}}
	})
	if err != nil {
		return nil, err
	}
	return sa, nil
}

// deleteRBAC removes the agent identity when no kubeconfig is generated any more; deleting the
// ServiceAccount also invalidates every token issued for it.
func (a *AgentAccess) deleteRBAC(ctx context.Context, deploy *v2.FirewallDeployment) error {
	meta := metav1.ObjectMeta{Name: ServiceAccountName(deploy), Namespace: deploy.Namespace}
	for _, obj := range []client.Object{&rbacv1.RoleBinding{ObjectMeta: meta}, &rbacv1.Role{ObjectMeta: meta}, &corev1.ServiceAccount{ObjectMeta: meta}} {
		if err := a.deleteIfControlled(ctx, deploy, obj); err != nil {
			return err
		}
	}
	return nil
}

// createOrUpdate applies mutate and the controller reference. Objects of the same name that
// the deployment does not control are not taken over.
func (a *AgentAccess) createOrUpdate(ctx context.Context, deploy *v2.FirewallDeployment, obj client.Object, mutate func()) error {
	_, err := controllerutil.CreateOrUpdate(ctx, a.Client, obj, func() error {
		// A UID means the object was read from the API server, i.e. it already exists.
		if obj.GetUID() != "" && !metav1.IsControlledBy(obj, deploy) {
			return fmt.Errorf("not taking over %s %q: it exists and is not controlled by FirewallDeployment %q", kindOf(obj), obj.GetName(), deploy.Name)
		}
		mutate()
		// The label is what the admission policy lets the manager write (docs/security.md).
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[IdentityLabel] = "true"
		obj.SetLabels(labels)
		return controllerutil.SetControllerReference(deploy, obj, a.Client.Scheme())
	})
	if err != nil {
		return fmt.Errorf("ensuring %s %q: %w", kindOf(obj), obj.GetName(), err)
	}
	return nil
}

func (a *AgentAccess) deleteIfControlled(ctx context.Context, deploy *v2.FirewallDeployment, obj client.Object) error {
	if err := a.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(obj, deploy) {
		return nil
	}
	if err := a.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s %q: %w", kindOf(obj), obj.GetName(), err)
	}
	return nil
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *corev1.ServiceAccount:
		return "ServiceAccount"
	case *corev1.Secret:
		return "Secret"
	case *rbacv1.Role:
		return "Role"
	case *rbacv1.RoleBinding:
		return "RoleBinding"
	}
	return fmt.Sprintf("%T", obj)
}
