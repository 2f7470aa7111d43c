package helm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent"
	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/syncbuf"
)

// auditPolicy records every request of the agent's ServiceAccount, nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
  users: ["` + agentUser + `"]
- level: None
`

// The agent's informers use streaming lists (a watch) where the API server offers them and fall
// back to list and watch where it does not (older workload clusters). The fallback needs more
// (list), so the RBAC test runs it; client-go reads this switch once, before any test runs.
func init() { _ = os.Setenv("KUBE_FEATURE_WatchListClient", "false") }

// permission is one (API group, resource[/subresource], verb) in a namespace ("" = cluster-wide).
type permission struct{ group, resource, verb, namespace string }

func (p permission) String() string {
	scope := p.namespace
	if scope == "" {
		scope = "cluster-wide"
	}
	return fmt.Sprintf("%s %s.%s (%s)", p.verb, p.resource, p.group, scope)
}

// TestWorkloadInstallAndAgentRBAC installs the workload chart with every option into a bare
// envtest API server (the chart brings the CRDs and the namespace), then runs the real agent as
// the chart's ServiceAccount against it: CWNPs and Services from the cluster, status and events
// on the CWNPs, its report into the FirewallMonitor. The API server's audit log of that run must
// show exactly the chart's rules in use: no request refused, no rule unused.
func TestWorkloadInstallAndAgentRBAC(t *testing.T) {
	helmBinary(t)
	if err := testenv.EnsureAssets(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	policyFile, auditLog := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policyFile, []byte(auditPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{}
	env.ControlPlane.GetAPIServer().Configure().
		Set("audit-policy-file", policyFile).
		Set("audit-log-path", auditLog).
		Set("audit-log-mode", "blocking")
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stopping envtest: %v", err)
		}
	})
	admin, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	kubeconfig := writeKubeconfig(t, env)

	out, errOut, err := runHelm(t, "install", workloadRelease, workloadChartDir(t), "--namespace", "default", "--kubeconfig", kubeconfig,
		"--wait=false", "--timeout", "2m", "--values", filepath.Join("testdata", "workload-all.yaml"))
	if err != nil {
		t.Fatalf("helm install: %v\n%s%s", err, out, errOut)
	}
	if strings.Contains(errOut, "PodSecurity") {
		t.Errorf("the droptailer pods violate Pod Security restricted:\n%s", errOut)
	}
	manifest := workloadManifest(t, kubeconfig)
	for _, o := range manifest {
		got := o.DeepCopy()
		if err := admin.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("%s %s from the release is not in the API server: %v", o.GetKind(), o.GetName(), err)
		}
	}

	// What the manager and the cluster's users create.
	mustCreate(ctx, t, admin, &v2.FirewallMonitor{ObjectMeta: metav1.ObjectMeta{Name: "fw-1", Namespace: workloadNamespace}, Size: "n1-medium-x86"})
	policy := &v1.ClusterwideNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: workloadNamespace},
		Spec: v1.PolicySpec{Egress: []v1.EgressRule{{To: []v1.IPBlock{{CIDR: "0.0.0.0/0"}},
			Ports: []v1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(int32(443))}}}}}}
	mustCreate(ctx, t, admin, policy)
	// Refused (185.1.2.10 is in no network of the firewall): the agent puts a Warning event on
	// the Service in its own namespace.
	mustCreate(ctx, t, admin, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: "185.1.2.10",
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 443}}}})

	var logs syncbuf.Buffer
	a := startAgent(ctx, t, agentKubeconfig(ctx, t, cfg), dir, &logs)

	waitFor := func(what string, cond func() (bool, error)) {
		t.Helper()
		waitForAgent(ctx, t, &logs, what, cond)
	}
	waitFor("the CWNP deployed", func() (bool, error) {
		var p v1.ClusterwideNetworkPolicy
		err := admin.Get(ctx, client.ObjectKeyFromObject(policy), &p)
		return err == nil && p.Status.State == v1.PolicyDeployed, err
	})
	waitFor("the agent's report in the FirewallMonitor", func() (bool, error) {
		var m v2.FirewallMonitor
		err := admin.Get(ctx, client.ObjectKey{Namespace: workloadNamespace, Name: "fw-1"}, &m)
		return err == nil && m.ControllerStatus != nil && ptr.Deref(m.ControllerStatus.RulesApplied, false), err
	})
	// The same event a second time is a patch of the first: clear the status, change the spec.
	if err := admin.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
		t.Fatal(err)
	}
	policy.Status = v1.PolicyStatus{}
	if err := admin.Status().Update(ctx, policy); err != nil {
		t.Fatal(err)
	}
	policy.Spec.Egress[0].Ports = append(policy.Spec.Egress[0].Ports, v1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(int32(80))})
	if err := admin.Update(ctx, policy); err != nil {
		t.Fatal(err)
	}
	waitFor("the FirewallRefused event on the refused Service", func() (bool, error) {
		var events corev1.EventList
		err := admin.List(ctx, &events, client.InNamespace("default"))
		for _, e := range events.Items {
			if e.InvolvedObject.Kind == "Service" && e.InvolvedObject.Name == "shop" && e.Reason == "FirewallRefused" {
				return true, nil
			}
		}
		return false, err
	})
	waitFor("the repeated Deployed event", func() (bool, error) {
		var events corev1.EventList
		err := admin.List(ctx, &events, client.InNamespace(workloadNamespace))
		for _, e := range events.Items {
			if e.InvolvedObject.Name == "web" && e.Reason == "Deployed" && e.Count >= 2 {
				return true, nil
			}
		}
		return false, err
	})
	a.stop()

	if strings.Contains(strings.ToLower(logs.String()), "forbidden") {
		t.Errorf("the agent was refused something:\n%s", logs.String())
	}
	used, refused := auditedPermissions(t, auditLog)
	for _, r := range refused {
		t.Errorf("refused: %s", r)
	}
	granted := grantedPermissions(t, manifest)
	// A cluster-wide grant covers the same request in any namespace.
	covers := func(g, u permission) bool {
		return g == u || (g.namespace == "" && g.group == u.group && g.resource == u.resource && g.verb == u.verb)
	}
	for _, p := range used {
		if !slices.ContainsFunc(granted, func(g permission) bool { return covers(g, p) }) {
			t.Errorf("the agent used %s, which the chart does not grant", p)
		}
	}
	for _, p := range granted {
		if !slices.ContainsFunc(used, func(u permission) bool { return covers(p, u) }) {
			t.Errorf("the chart grants %s, which the agent never used: least privilege says drop it", p)
		}
	}

	if out, errOut, err := runHelm(t, "uninstall", workloadRelease, "--namespace", "default", "--kubeconfig", kubeconfig, "--wait=false"); err != nil {
		t.Fatalf("helm uninstall: %v\n%s%s", err, out, errOut)
	}
	var role rbacv1.Role
	if err := admin.Get(ctx, client.ObjectKey{Namespace: workloadNamespace, Name: "palisade-agent"}, &role); !apierrors.IsNotFound(err) {
		t.Errorf("Role still there after uninstall: %v", err)
	}
	// The namespace, and the policies in it, outlive the release.
	var ns corev1.Namespace
	if err := admin.Get(ctx, client.ObjectKey{Name: workloadNamespace}, &ns); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("namespace %s removed by uninstall: %v", workloadNamespace, err)
	}
	if err := admin.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
		t.Errorf("CWNP removed by uninstall: %v", err)
	}
}

type runningAgent struct {
	stop func()
}

func startAgent(ctx context.Context, t *testing.T, kubeconfig, dir string, logs *syncbuf.Buffer) runningAgent {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
name: fw-1
sources:
  shoot: {kubeconfig: %s}
  static:
    firewall: {internalPrefixes: [10.0.0.0/8], clusterPrefixes: [10.1.0.0/22]}
controllers:
  firewall: {source: static}
  cwnp: {source: shoot}
  service: {source: shoot}
  monitor: {source: shoot}
nftables: {ruleFile: %s/rules.v4}
distance: {frrFile: "-"}
reporting: {interval: 1s}
`, kubeconfig, dir)))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := agent.NewWith(cfg, log, &nft.FakeKernel{})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	var once sync.Once
	r := runningAgent{stop: func() {
		once.Do(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		})
	}}
	t.Cleanup(r.stop)
	return r
}

// agentKubeconfig writes a kubeconfig with a token of the chart's ServiceAccount.
func agentKubeconfig(ctx context.Context, t *testing.T, cfg *rest.Config) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(workloadNamespace).CreateToken(ctx, "palisade-agent",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["workload"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["agent"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["agent"] = &clientcmdapi.Context{Cluster: "workload", AuthInfo: "agent"}
	kc.CurrentContext = "agent"
	path := filepath.Join(t.TempDir(), "agent-kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func workloadManifest(t *testing.T, kubeconfig string) []*unstructured.Unstructured {
	t.Helper()
	out, errOut, err := runHelm(t, "get", "manifest", workloadRelease, "--namespace", "default", "--kubeconfig", kubeconfig)
	if err != nil {
		t.Fatalf("helm get manifest: %v\n%s", err, errOut)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// grantedPermissions expands the chart's Role (namespace firewall) and ClusterRole rules.
func grantedPermissions(t *testing.T, objs []*unstructured.Unstructured) []permission {
	t.Helper()
	var out []permission
	for _, o := range objs {
		var rules []rbacv1.PolicyRule
		var ns string
		switch o.GetKind() {
		case "Role":
			rules, ns = fromUnstructured[rbacv1.Role](t, o).Rules, o.GetNamespace()
		case "ClusterRole":
			rules = fromUnstructured[rbacv1.ClusterRole](t, o).Rules
		default:
			continue
		}
		for _, r := range rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						out = append(out, permission{g, res, v, ns})
					}
				}
			}
		}
	}
	return out
}

// auditedPermissions reads the agent's requests from the audit log.
func auditedPermissions(t *testing.T, path string) (used []permission, refused []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Verb       string `json:"verb"`
			RequestURI string `json:"requestURI"`
			User       struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef *struct {
				APIGroup    string `json:"apiGroup"`
				Resource    string `json:"resource"`
				Subresource string `json:"subresource"`
				Namespace   string `json:"namespace"`
			} `json:"objectRef"`
			ResponseStatus *struct {
				Code int `json:"code"`
			} `json:"responseStatus"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		if ev.User.Username != agentUser {
			continue
		}
		if ev.ResponseStatus != nil && ev.ResponseStatus.Code == 403 {
			refused = append(refused, ev.Verb+" "+ev.RequestURI)
		}
		if ev.ObjectRef == nil || ev.ObjectRef.Resource == "" {
			continue // discovery (non-resource URLs), open to every authenticated user
		}
		res := ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			res += "/" + ev.ObjectRef.Subresource
		}
		p := permission{ev.ObjectRef.APIGroup, res, ev.Verb, ev.ObjectRef.Namespace}
		if !slices.Contains(used, p) {
			used = append(used, p)
		}
	}
	if len(used) == 0 {
		t.Fatal("the audit log holds no request of the agent")
	}
	return used, refused
}

// waitForAgent polls cond; a refused request in the agent's log ends the wait at once.
func waitForAgent(ctx context.Context, t *testing.T, logs *syncbuf.Buffer, what string, cond func() (bool, error)) {
	t.Helper()
	for {
		if l := logs.String(); strings.Contains(strings.ToLower(l), "forbidden") {
			t.Fatalf("waiting for %s: the agent was refused a request:\n%s", what, l)
		}
		ok, err := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last error %v)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
