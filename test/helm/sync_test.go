package helm

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The chart carries copies of the generated manifests (Helm cannot read outside the chart).
// They must be byte-identical to config/, so a marker change without `make helm-sync` fails.
func TestChartCopiesMatchGenerated(t *testing.T) {
	root := repoRoot(t)
	pairs := map[string]string{
		"config/rbac/role.yaml":         "charts/palisade/files/rbac/role.yaml",
		"config/webhook/manifests.yaml": "charts/palisade/files/webhook/manifests.yaml",
	}
	generatedCRDs, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(generatedCRDs) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	for _, p := range generatedCRDs {
		pairs[filepath.Join("config", "crd", "bases", filepath.Base(p))] = filepath.Join("charts", "palisade", "crds", filepath.Base(p))
	}
	chartCRDs, _ := filepath.Glob(filepath.Join(root, "charts", "palisade", "crds", "*"))
	for _, p := range chartCRDs {
		if _, ok := pairs[filepath.Join("config", "crd", "bases", filepath.Base(p))]; !ok {
			t.Errorf("charts/palisade/crds/%s has no counterpart in config/crd/bases; run make helm-sync", filepath.Base(p))
		}
	}
	for generated, copied := range pairs {
		want, err := os.ReadFile(filepath.Join(root, generated))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, copied))
		if err != nil {
			t.Errorf("%s: %v; run make helm-sync", copied, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s; run make helm-sync", copied, generated)
		}
	}
}

// What helm installs as CRDs must equal the generated CRDs, object for object.
func TestChartCRDsEqualGenerated(t *testing.T) {
	out, errOut, err := runHelm(t, "show", "crds", chartDir(t))
	if err != nil {
		t.Fatalf("helm show crds: %v\n%s", err, errOut)
	}
	shown, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*unstructured.Unstructured{}
	for _, o := range shown {
		got[o.GetName()] = o
	}
	paths, _ := filepath.Glob(filepath.Join(repoRoot(t), "config", "crd", "bases", "*.yaml"))
	var wantNames []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeObjects(string(b))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range objs {
			wantNames = append(wantNames, want.GetName())
			if g, ok := got[want.GetName()]; !ok {
				t.Errorf("chart does not install CRD %s", want.GetName())
			} else if !reflect.DeepEqual(g.Object, want.Object) {
				t.Errorf("chart CRD %s differs from %s", want.GetName(), filepath.Base(p))
			}
		}
	}
	for name := range got {
		if !slices.Contains(wantNames, name) {
			t.Errorf("chart installs CRD %s that config/crd/bases does not have", name)
		}
	}
}
