package security

import (
	"testing"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/userdata"
	"github.com/palisade-fw/palisade/internal/userdata/agentaccess"
)

// Without RBAC every other test here would pass for the wrong reason.
func TestTheAPIServerEnforcesRBAC(t *testing.T) {
	g := NewWithT(t)
	nobody, err := client.New(impersonate(stack.Config, tenantNamespace, "nobody"), client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	expectRBACDenied(g, nobody.List(ctx, &v2.FirewallList{}, client.InNamespace(tenantNamespace)), "an unbound ServiceAccount lists Firewalls")
	g.Expect(asManager.List(ctx, &v2.FirewallList{}, client.InNamespace(tenantNamespace))).To(Succeed(), "the manager lists Firewalls where it serves")
}

func TestManagerCannotMintTokensForOtherServiceAccounts(t *testing.T) {
	g := NewWithT(t)
	clientset, err := kubernetes.NewForConfig(impersonate(stack.Config, releaseNamespace, managerServiceAccount))
	g.Expect(err).NotTo(HaveOccurred())
	tenantApp := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tenant-app", Namespace: tenantNamespace}}
	g.Expect(admin.Create(ctx, tenantApp)).To(Succeed())
	// Named like an agent, but in a namespace the manager does not serve.
	lookalike := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "evil-firewall-agent", Namespace: unrelatedNamespace}}
	g.Expect(admin.Create(ctx, lookalike)).To(Succeed())
	request := func(namespace, name string) error {
		_, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		return err
	}

	expectRBACDenied(g, request(unrelatedNamespace, "default"), "a token for kube-system/default")
	expectRBACDenied(g, request(unrelatedNamespace, lookalike.Name), "a token for an agent-named ServiceAccount outside the served namespaces")
	expectPolicyDenied(g, request(tenantNamespace, tenantApp.Name), "a token for a tenant's own ServiceAccount in a served namespace")
	// envtest runs no controller-manager, so the namespace's default ServiceAccount is made here.
	g.Expect(admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: tenantNamespace}})).To(Succeed())
	expectPolicyDenied(g, request(tenantNamespace, "default"), "a token for the served namespace's default ServiceAccount")
}

func TestManagerCannotReadOrChangeUnrelatedSecrets(t *testing.T) {
	g := NewWithT(t)
	outside := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cluster-credentials", Namespace: unrelatedNamespace}, StringData: map[string]string{"key": "value"}}
	inside := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tenant-database", Namespace: tenantNamespace}, StringData: map[string]string{"password": "hunter2"}}
	g.Expect(admin.Create(ctx, outside)).To(Succeed())
	g.Expect(admin.Create(ctx, inside)).To(Succeed())

	t.Log("outside the served namespaces the manager sees no Secret at all")
	expectRBACDenied(g, asManager.Get(ctx, client.ObjectKeyFromObject(outside), &corev1.Secret{}), "get")
	expectRBACDenied(g, asManager.List(ctx, &corev1.SecretList{}, client.InNamespace(unrelatedNamespace)), "list")
	expectRBACDenied(g, asManager.List(ctx, &corev1.SecretList{}), "list cluster-wide")
	changed := outside.DeepCopy()
	changed.StringData = map[string]string{"key": "changed"}
	expectRBACDenied(g, asManager.Update(ctx, changed), "update")
	expectRBACDenied(g, asManager.Delete(ctx, outside), "delete")
	expectRBACDenied(g, asManager.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: unrelatedNamespace,
		Labels: map[string]string{userdata.GeneratedKubeconfigLabel: "true"}}}), "create, even labelled")

	t.Log("in a served namespace it reads (userdata references any Secret) but changes only what it labelled")
	current := &corev1.Secret{}
	g.Expect(asManager.Get(ctx, client.ObjectKeyFromObject(inside), current)).To(Succeed())
	tampered := current.DeepCopy()
	tampered.Data["password"] = []byte("changed")
	expectPolicyDenied(g, asManager.Update(ctx, tampered), "update a tenant Secret")
	hijacked := current.DeepCopy()
	metav1.SetMetaDataLabel(&hijacked.ObjectMeta, userdata.GeneratedKubeconfigLabel, "true")
	expectPolicyDenied(g, asManager.Update(ctx, hijacked), "label a tenant Secret as its own")
	expectPolicyDenied(g, asManager.Patch(ctx, current, client.RawPatch("application/merge-patch+json", []byte(`{"data":{"password":"Y2hhbmdlZA=="}}`))), "patch a tenant Secret")
	expectPolicyDenied(g, asManager.Delete(ctx, current), "delete a tenant Secret")
	expectPolicyDenied(g, asManager.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled", Namespace: tenantNamespace}}), "create an unlabelled Secret")

	g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(inside), current)).To(Succeed())
	g.Expect(string(current.Data["password"])).To(Equal("hunter2"), "the tenant Secret is untouched")

	t.Log("its own webhook certificate Secret in the release namespace, and nothing else there")
	certificate := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: releaseName + "-webhook-tls", Namespace: releaseNamespace}}
	g.Expect(asManager.Create(ctx, certificate, client.DryRunAll)).To(Succeed())
	expectPolicyDenied(g, asManager.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: releaseNamespace}}, client.DryRunAll), "create another Secret in the release namespace")
	g.Expect(admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "metal-api", Namespace: releaseNamespace}, StringData: map[string]string{"hmac": "key"}})).To(Succeed())
	expectRBACDenied(g, asManager.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "metal-api"}, &corev1.Secret{}), "read the metal-api Secret (it is mounted, not read)")
}

func TestManagerCannotEscalate(t *testing.T) {
	g := NewWithT(t)
	agentLabels := map[string]string{agentaccess.IdentityLabel: "true"}
	bindClusterAdmin := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "x-firewall-agent", Namespace: tenantNamespace, Labels: agentLabels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: managerServiceAccount, Namespace: releaseNamespace}},
	}
	expectDenied(g, asManager.Create(ctx, bindClusterAdmin), "bind cluster-admin in a served namespace")
	expectDenied(g, asManager.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "palisade-escalation"},
		RoleRef:    bindClusterAdmin.RoleRef, Subjects: bindClusterAdmin.Subjects,
	}), "bind cluster-admin cluster-wide")
	expectDenied(g, asManager.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "wild-firewall-agent", Namespace: tenantNamespace, Labels: agentLabels},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}},
	}), "a Role with wildcards")
	// RBAC allows this Role (the manager holds every rule in it); the policy wants the label.
	expectPolicyDenied(g, asManager.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: tenantNamespace},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}},
	}), "an unlabelled Role")
	expectPolicyDenied(g, asManager.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "y-firewall-agent", Namespace: tenantNamespace, Labels: agentLabels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "palisade-manager"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: tenantNamespace}},
	}), "bind its own Role to a tenant ServiceAccount")
	expectPolicyDenied(g, asManager.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled", Namespace: tenantNamespace}}), "an unlabelled ServiceAccount")
	expectRBACDenied(g, asManager.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "z-firewall-agent", Namespace: unrelatedNamespace, Labels: agentLabels}}), "a ServiceAccount outside the served namespaces")

	t.Log("the authorizer's own verdict on the verbs that lead to cluster-admin")
	for _, attr := range []authorizationv1.ResourceAttributes{
		{Verb: "bind", Group: rbacv1.GroupName, Resource: "clusterroles", Name: "cluster-admin", Namespace: tenantNamespace},
		{Verb: "escalate", Group: rbacv1.GroupName, Resource: "roles", Namespace: tenantNamespace},
		{Verb: "impersonate", Resource: "users", Name: "admin"},
		{Verb: "impersonate", Resource: "serviceaccounts", Namespace: tenantNamespace},
		{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: tenantNamespace},
		{Verb: "create", Group: rbacv1.GroupName, Resource: "clusterrolebindings"},
		{Verb: "get", Resource: "secrets", Namespace: unrelatedNamespace},
	} {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: managerUser, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"},
			ResourceAttributes: &attr,
		}}
		g.Expect(admin.Create(ctx, review)).To(Succeed())
		g.Expect(review.Status.Allowed).To(BeFalse(), "the manager may %s %s/%s %s", attr.Verb, attr.Resource, attr.Subresource, attr.Name)
	}
	expectRBACDenied(g, asManager.List(ctx, &v2.FirewallList{}, client.InNamespace(unrelatedNamespace)), "Firewalls outside the served namespaces")
}
