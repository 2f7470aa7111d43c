package helm

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

const (
	workloadRelease   = "palisade-workload"
	workloadNamespace = v2.FirewallShootNamespace
	agentUser         = "system:serviceaccount:firewall:palisade-agent"
)

func workloadChartDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "charts", "palisade-workload")
}

func renderWorkload(t *testing.T, valuesFiles ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", workloadRelease, workloadChartDir(t), "--kube-version", kubeVersion}
	for _, f := range valuesFiles {
		args = append(args, "--values", filepath.Join("testdata", f))
	}
	out, errOut, err := runHelm(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", valuesFiles, err, errOut)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestWorkloadChartLint(t *testing.T) {
	for _, values := range [][]string{nil, {"workload-all.yaml"}} {
		args := []string{"lint", "--strict", workloadChartDir(t), "--kube-version", kubeVersion}
		for _, f := range values {
			args = append(args, "--values", filepath.Join("testdata", f))
		}
		if out, errOut, err := runHelm(t, args...); err != nil {
			t.Errorf("helm lint %v: %v\n%s%s", values, err, out, errOut)
		}
	}
	// The values schema refuses unknown keys and wrong types.
	for _, bad := range [][]string{
		{"--values", filepath.Join("testdata", "workload-typo.yaml")},
		{"--set", "exporters.nodeExporter.port=0"},
		{"--set", "agent.extraSubjects[0].kind=Robot,agent.extraSubjects[0].name=x"},
	} {
		args := append([]string{"template", workloadRelease, workloadChartDir(t)}, bad...)
		if _, _, err := runHelm(t, args...); err == nil {
			t.Errorf("helm template %v succeeded; the schema must refuse it", bad)
		}
	}
}

// Defaults: the namespace, the agent's identity and RBAC, nothing else. Everything on: the
// exporter Services (headless, pointing at the firewalls) and the droptailer Deployment.
func TestWorkloadChartRender(t *testing.T) {
	kinds := func(objs []*unstructured.Unstructured) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.GetKind()+"/"+o.GetName())
		}
		sort.Strings(out)
		return out
	}
	defaults := renderWorkload(t)
	want := []string{"ClusterRole/palisade-agent", "ClusterRoleBinding/palisade-agent", "Namespace/firewall",
		"Role/palisade-agent", "RoleBinding/palisade-agent", "ServiceAccount/palisade-agent"}
	if got := kinds(defaults); !slices.Equal(got, want) {
		t.Errorf("default objects %v, want %v", got, want)
	}
	for _, o := range defaults {
		if ns := o.GetNamespace(); ns != "" && ns != workloadNamespace {
			t.Errorf("%s %s in namespace %s", o.GetKind(), o.GetName(), ns)
		}
	}

	all := renderWorkload(t, "workload-all.yaml")
	for name, port := range map[string]int64{"nftables-exporter": 9630, "node-exporter": 9100} {
		var svc *corev1.Service
		var slice map[string]any
		for _, o := range all {
			switch {
			case o.GetKind() == "Service" && o.GetName() == name:
				svc = fromUnstructured[corev1.Service](t, o)
			case o.GetKind() == "EndpointSlice" && o.GetLabels()["kubernetes.io/service-name"] == name:
				slice = o.Object
			}
		}
		if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone || len(svc.Spec.Selector) != 0 ||
			len(svc.Spec.Ports) != 1 || int64(svc.Spec.Ports[0].Port) != port || svc.Labels["app"] != name {
			t.Errorf("Service %s: %+v", name, svc)
		}
		if eps, _ := slice["endpoints"].([]any); len(eps) != 2 {
			t.Errorf("EndpointSlice of %s: %v", name, slice)
		}
	}
	var dep *appsv1.Deployment
	for _, o := range all {
		if o.GetKind() == "Deployment" {
			dep = fromUnstructured[appsv1.Deployment](t, o)
		}
	}
	if dep == nil || dep.Name != "droptailer" || dep.Spec.Template.Labels["app"] != "droptailer" {
		t.Fatalf("droptailer Deployment: %+v", dep)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/palisade-fw/palisade-droptailer:"+chartAppVersion(t) || !ptr.Deref(c.SecurityContext.ReadOnlyRootFilesystem, false) ||
		len(c.Ports) != 0 || !slices.Equal(c.Args, []string{"--service=nftables-exporter.firewall.svc.cluster.local:9630", "--resolve-interval=10s"}) {
		t.Errorf("droptailer container: %+v", c)
	}
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(workloadChartDir(t), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "appVersion: "); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatal("Chart.yaml has no appVersion")
	return ""
}

// The workload chart's CRDs are byte-identical copies of the generated ones (make helm-sync).
func TestWorkloadChartCRDsMatchGenerated(t *testing.T) {
	root := repoRoot(t)
	want := []string{"firewall.metal-stack.io_firewallmonitors.yaml", "metal-stack.io_clusterwidenetworkpolicies.yaml"}
	got, _ := filepath.Glob(filepath.Join(workloadChartDir(t), "crds", "*"))
	var names []string
	for _, p := range got {
		names = append(names, filepath.Base(p))
	}
	if !slices.Equal(names, want) {
		t.Errorf("workload chart CRDs %v, want %v", names, want)
	}
	for _, n := range want {
		gen, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", n))
		if err != nil {
			t.Fatal(err)
		}
		copied, err := os.ReadFile(filepath.Join(workloadChartDir(t), "crds", n))
		if err != nil || !bytes.Equal(gen, copied) {
			t.Errorf("charts/palisade-workload/crds/%s differs from config/crd/bases; run make helm-sync (%v)", n, err)
		}
	}
}
