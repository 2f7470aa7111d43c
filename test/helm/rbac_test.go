package helm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/palisade-fw/palisade/internal/testenv/rbacrules"
)

// rbacObjects are the rendered Roles and ClusterRoles by name, and the grants each binding
// gives the manager's ServiceAccount: cluster-wide (ClusterRoleBindings) and per namespace.
type rbacObjects struct {
	clusterWide []rbacv1.PolicyRule
	namespaced  map[string][]rbacv1.PolicyRule
	bindings    []*unstructured.Unstructured
}

func managerRBAC(t *testing.T, objs []*unstructured.Unstructured, skipRoles ...string) rbacObjects {
	t.Helper()
	clusterRoles, roles := map[string][]rbacv1.PolicyRule{}, map[string][]rbacv1.PolicyRule{}
	for _, o := range byKind(objs, "ClusterRole") {
		clusterRoles[o.GetName()] = fromUnstructured[rbacv1.ClusterRole](t, o).Rules
	}
	for _, o := range byKind(objs, "Role") {
		roles[o.GetNamespace()+"/"+o.GetName()] = fromUnstructured[rbacv1.Role](t, o).Rules
	}
	out := rbacObjects{namespaced: map[string][]rbacv1.PolicyRule{}}
	sa := oneOfKind(t, objs, "ServiceAccount").GetName()
	for _, o := range append(byKind(objs, "ClusterRoleBinding"), byKind(objs, "RoleBinding")...) {
		b := fromUnstructured[rbacv1.RoleBinding](t, o)
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Name == sa && s.Namespace == releaseNamespace }) {
			continue
		}
		if slices.Contains(skipRoles, b.RoleRef.Name) {
			continue
		}
		out.bindings = append(out.bindings, o)
		rules, ok := clusterRoles[b.RoleRef.Name]
		if b.RoleRef.Kind == "Role" {
			rules, ok = roles[o.GetNamespace()+"/"+b.RoleRef.Name]
		}
		if !ok {
			t.Errorf("%s %s refers to %s %s, which the chart does not render", o.GetKind(), o.GetName(), b.RoleRef.Kind, b.RoleRef.Name)
		}
		if o.GetKind() == "ClusterRoleBinding" {
			out.clusterWide = append(out.clusterWide, rules...)
		} else {
			out.namespaced[o.GetNamespace()] = append(out.namespaced[o.GetNamespace()], rules...)
		}
	}
	return out
}

// generatedRBAC reads config/rbac/role.yaml: the ClusterRole and the Roles of the placeholder
// namespaces.
func generatedRBAC(t *testing.T) (cluster, release, served, shoot []rbacv1.PolicyRule) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(string(b))
	if err != nil {
		t.Fatal(err)
	}
	cluster = fromUnstructured[rbacv1.ClusterRole](t, oneOfKind(t, objs, "ClusterRole")).Rules
	for _, o := range byKind(objs, "Role") {
		switch rules := fromUnstructured[rbacv1.Role](t, o).Rules; o.GetNamespace() {
		case "palisade-system":
			release = rules
		case "served-namespace":
			served = rules
		case "shoot-namespace":
			shoot = rules
		default:
			t.Errorf("config/rbac/role.yaml: Role in unexpected namespace %q", o.GetNamespace())
		}
	}
	return cluster, release, served, shoot
}

// shootRules are the shoot-namespace rules as the chart renders them for a Gardener shoot
// namespace: the Infrastructure's by the shoot's name.
func shootRules(shoot []rbacv1.PolicyRule, infrastructure string) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range shoot {
		r = *r.DeepCopy()
		if slices.Contains(r.Resources, "infrastructures") || slices.Contains(r.Resources, "infrastructures/status") {
			r.ResourceNames = []string{infrastructure}
		}
		out = append(out, r)
	}
	return out
}

// The acceptance of issue 14: whatever the values (cluster-wide mode aside, which is opt-in and
// held by the admission policy), nothing bound cluster-wide creates tokens, reads or writes
// Secrets, writes ServiceAccounts or RBAC, and no rule anywhere has a wildcard or escalates.
func TestNoClusterWideTokensOrSecretWrites(t *testing.T) {
	for name, files := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, files)
			rbac := managerRBAC(t, objs)
			for _, g := range rbacrules.Expand(rbac.clusterWide) {
				problem := rbacrules.ClusterWideProblem(g)
				if name == "cluster-wide" {
					problem = rbacrules.Problem(g)
				}
				if problem != "" {
					t.Errorf("cluster-wide grant %s: %s", g, problem)
				}
			}
			for ns, rules := range rbac.namespaced {
				for _, g := range rbacrules.Expand(rules) {
					if p := rbacrules.Problem(g); p != "" {
						t.Errorf("grant %s in namespace %s: %s", g, ns, p)
					}
				}
			}
			for _, o := range objs {
				if ref, _, _ := unstructured.NestedString(o.Object, "roleRef", "name"); slices.Contains([]string{"cluster-admin", "admin", "edit"}, ref) {
					t.Errorf("%s %s binds %s", o.GetKind(), o.GetName(), ref)
				}
			}
			if name == "cluster-wide" {
				assertAdmissionPolicy(t, objs)
			}
		})
	}
}

// The chart grants exactly what the markers generate: every generated rule reaches the
// manager, in the scope the markers say, and nothing else does.
func TestRBACMatchesGenerated(t *testing.T) {
	cluster, release, served, shoot := generatedRBAC(t)
	if len(shoot) == 0 {
		t.Fatal("config/rbac/role.yaml has no shoot-namespace rules")
	}
	webhookNames := []string{"palisade-mutating-webhook-configuration", "palisade-validating-webhook-configuration"}
	grants := func(rules []rbacv1.PolicyRule) []string {
		var out []string
		for _, g := range rbacrules.Expand(rules) {
			out = append(out, g.String())
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	clusterOnly := func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.Resources, "namespaces") || slices.ContainsFunc(r.APIGroups, func(g string) bool {
			return g == "admissionregistration.k8s.io" || g == "authentication.k8s.io" || g == "authorization.k8s.io"
		})
	}
	var clusterOnlyRules, namespaceable []rbacv1.PolicyRule
	for _, r := range cluster {
		if clusterOnly(r) {
			clusterOnlyRules = append(clusterOnlyRules, r)
		} else {
			namespaceable = append(namespaceable, r)
		}
	}
	for _, r := range clusterOnlyRules {
		if slices.Contains(r.APIGroups, "admissionregistration.k8s.io") && !slices.Equal(r.ResourceNames, webhookNames) {
			t.Fatalf("generated webhook configuration rule %+v: the chart expects the default names %v", r, webhookNames)
		}
	}
	cases := map[string]struct {
		files            []string
		wantCluster      []rbacv1.PolicyRule
		wantServed       []rbacv1.PolicyRule
		servedNamespaces []string
		// shootNamespaces are served namespaces named like Gardener's, with their Infrastructure.
		shootNamespaces     map[string]string
		wantNamespaceFlag   string
		wantNoNamespaceFlag bool
	}{
		"defaults": {
			wantCluster: clusterOnlyRules, wantServed: append(slices.Clone(namespaceable), served...),
			servedNamespaces: []string{releaseNamespace}, wantNamespaceFlag: releaseNamespace,
		},
		"namespaces": {
			files: []string{"namespaces.yaml"}, wantCluster: clusterOnlyRules, wantServed: append(slices.Clone(namespaceable), served...),
			servedNamespaces: []string{"tenant-a", "tenant-b"}, wantNamespaceFlag: "tenant-a,tenant-b",
		},
		"gardener": {
			files: []string{"gardener.yaml"}, wantCluster: clusterOnlyRules, wantServed: append(slices.Clone(namespaceable), served...),
			servedNamespaces:  []string{"shoot--proj--name", "shoot--proj--other--with-dashes", "shoot----no-project", "tenant-a"},
			shootNamespaces:   map[string]string{"shoot--proj--name": "name", "shoot--proj--other--with-dashes": "other--with-dashes"},
			wantNamespaceFlag: "shoot--proj--name,shoot--proj--other--with-dashes,shoot----no-project,tenant-a",
		},
		"cluster-wide": {
			files: []string{"cluster-wide.yaml"}, wantCluster: append(slices.Clone(cluster), served...), wantNoNamespaceFlag: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := render(t, tc.files)
			// The leader election Role is written by hand (templates/leader-election-rbac.yaml).
			rbac := managerRBAC(t, objs, releaseName+"-leader-election")
			if got, want := grants(rbac.clusterWide), grants(tc.wantCluster); !slices.Equal(got, want) {
				t.Errorf("cluster-wide grants differ from the generated ones\n got: %v\nwant: %v", got, want)
			}
			wantNamespaces := append(slices.Clone(tc.servedNamespaces), releaseNamespace)
			slices.Sort(wantNamespaces)
			wantNamespaces = slices.Compact(wantNamespaces)
			var gotNamespaces []string
			for ns := range rbac.namespaced {
				gotNamespaces = append(gotNamespaces, ns)
			}
			slices.Sort(gotNamespaces)
			if !slices.Equal(gotNamespaces, wantNamespaces) {
				t.Errorf("Roles in namespaces %v, want %v", gotNamespaces, wantNamespaces)
			}
			for _, ns := range gotNamespaces {
				var want []rbacv1.PolicyRule
				if slices.Contains(tc.servedNamespaces, ns) {
					want = append(want, tc.wantServed...)
				}
				if infrastructure, ok := tc.shootNamespaces[ns]; ok {
					want = append(want, shootRules(shoot, infrastructure)...)
				}
				if ns == releaseNamespace {
					want = append(want, release...)
				}
				if got, want := grants(rbac.namespaced[ns]), grants(want); !slices.Equal(got, want) {
					t.Errorf("grants in namespace %s differ from the generated ones\n got: %v\nwant: %v", ns, got, want)
				}
			}
			flags := args(t, managerContainer(t, fromUnstructuredDeployment(t, objs)))
			if got, ok := flags["namespace"]; tc.wantNoNamespaceFlag && ok || !tc.wantNoNamespaceFlag && got != tc.wantNamespaceFlag {
				t.Errorf("--namespace=%q (given: %v), want %q", got, ok, tc.wantNamespaceFlag)
			}
		})
	}
}

// Two releases coexist: each has its own webhook configurations, certificate Secret and RBAC,
// and the manager is told the names it patches.
func TestPerReleaseWebhookNames(t *testing.T) {
	out, errOut, err := runHelm(t, "template", "second", chartDir(t), "--namespace", releaseNamespace, "--kube-version", kubeVersion)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, errOut)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	mutating := oneOfKind(t, objs, "MutatingWebhookConfiguration").GetName()
	validating := oneOfKind(t, objs, "ValidatingWebhookConfiguration").GetName()
	if !strings.HasPrefix(mutating, "second-") || !strings.HasPrefix(validating, "second-") {
		t.Errorf("webhook configurations %q and %q are not the release's own", mutating, validating)
	}
	flags := args(t, managerContainer(t, fromUnstructuredDeployment(t, objs)))
	if flags["mutating-webhook-configuration-name"] != mutating || flags["validating-webhook-configuration-name"] != validating {
		t.Errorf("manager patches %q and %q, the chart renders %q and %q", flags["mutating-webhook-configuration-name"], flags["validating-webhook-configuration-name"], mutating, validating)
	}
	if !strings.HasPrefix(flags["webhook-secret-name"], "second-") {
		t.Errorf("--webhook-secret-name=%q is not the release's own", flags["webhook-secret-name"])
	}
	var names []string
	for _, o := range byKind(objs, "ClusterRole") {
		for _, r := range fromUnstructured[rbacv1.ClusterRole](t, o).Rules {
			if slices.Contains(r.APIGroups, "admissionregistration.k8s.io") {
				names = append(names, r.ResourceNames...)
			}
		}
	}
	slices.Sort(names)
	if want := []string{mutating, validating}; !slices.Equal(names, want) {
		t.Errorf("the manager may update webhook configurations %v, want %v", names, want)
	}
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		for _, o := range byKind(objs, kind) {
			if !strings.HasPrefix(o.GetName(), "second-") {
				t.Errorf("cluster-scoped %s %s would collide with another release", kind, o.GetName())
			}
		}
	}
}

func TestClusterWideNeedsTheAdmissionPolicy(t *testing.T) {
	_, errOut, err := renderRaw(t, []string{"cluster-wide.yaml"}, "--set", "rbac.admissionPolicy.enabled=false")
	if err == nil || !strings.Contains(errOut, "rbac.admissionPolicy.enabled") {
		t.Errorf("cluster-wide RBAC without the admission policy rendered (err %v): %s", err, errOut)
	}
}

// assertAdmissionPolicy checks that the policy is bound and applies to the manager's identity.
func assertAdmissionPolicy(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	policy := oneOfKind(t, objs, "ValidatingAdmissionPolicy")
	binding := oneOfKind(t, objs, "ValidatingAdmissionPolicyBinding")
	if name, _, _ := unstructured.NestedString(binding.Object, "spec", "policyName"); name != policy.GetName() {
		t.Errorf("binding refers to policy %q, want %q", name, policy.GetName())
	}
	if actions, _, _ := unstructured.NestedStringSlice(binding.Object, "spec", "validationActions"); !slices.Equal(actions, []string{"Deny"}) {
		t.Errorf("binding validationActions %v, want [Deny]", actions)
	}
	conds, _, _ := unstructured.NestedSlice(policy.Object, "spec", "matchConditions")
	sa := oneOfKind(t, objs, "ServiceAccount").GetName()
	want := "system:serviceaccount:" + releaseNamespace + ":" + sa
	if len(conds) != 1 || !strings.Contains(conds[0].(map[string]any)["expression"].(string), `"`+want+`"`) {
		t.Errorf("policy matchConditions %v do not select %s", conds, want)
	}
}

func fromUnstructuredDeployment(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	return fromUnstructured[appsv1.Deployment](t, oneOfKind(t, objs, "Deployment"))
}
