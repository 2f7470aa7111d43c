// Package helm tests the chart in charts/palisade with the real helm binary: lint, rendering
// with several value sets, drift against the generated manifests in config/, and an install and
// upgrade into the envtest API server.
//
// The helm binary is built from the Go module proxy outside the module graph (the helm SDK
// would pull k8s.io modules off Palisade's pins); `make helm` builds it into the same cache
// directory, and the tests build it themselves when it is missing.
package helm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/ci"
	"github.com/palisade-fw/palisade/internal/testenv/helmtool"
)

// The helm and Kubernetes versions are helmtool's, which the other suites render with too.
const (
	helmVersion = helmtool.Version
	kubeVersion = helmtool.KubeVersion
)

const (
	releaseName      = "palisade"
	releaseNamespace = "palisade-system"
)

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helmBinary returns the helm binary: $HELM, else the cached build, else it builds one. The
// test is skipped only when helm cannot be built at all (for example without the module proxy).
func helmBinary(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() { helmPath, helmErr = helmtool.Binary() })
	if helmErr != nil {
		ci.SkipOutsideCI(t, fmt.Sprintf("helm %s is not available and could not be built: %v", helmVersion, helmErr))
	}
	return helmPath
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func chartDir(t *testing.T) string { return filepath.Join(repoRoot(t), "charts", "palisade") }

// runHelm runs helm with isolated config, cache and data directories so that a developer's
// repositories and plugins never influence the result.
func runHelm(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := helmHome()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"), // overridden by --kubeconfig where needed
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

var (
	helmHomeOnce sync.Once
	helmHomeDir  string
)

func helmHome() string {
	helmHomeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "palisade-helm-home-")
		if err != nil {
			panic(err)
		}
		helmHomeDir = dir
	})
	return helmHomeDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if helmHomeDir != "" {
		_ = os.RemoveAll(helmHomeDir)
	}
	os.Exit(code)
}

// render runs helm template with the given values files (relative to testdata) and extra args
// and returns the rendered objects.
func render(t *testing.T, valuesFiles []string, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	out, errOut, err := renderRaw(t, valuesFiles, extra...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", valuesFiles, err, errOut)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatalf("decoding rendered manifests: %v", err)
	}
	return objs
}

func renderRaw(t *testing.T, valuesFiles []string, extra ...string) (string, string, error) {
	t.Helper()
	// A helm built from source reports Kubernetes v1.20 to templates; render for the tested version.
	args := []string{"template", releaseName, chartDir(t), "--namespace", releaseNamespace, "--kube-version", kubeVersion}
	for _, f := range valuesFiles {
		args = append(args, "--values", filepath.Join("testdata", f))
	}
	return runHelm(t, append(args, extra...)...)
}

// decodeObjects splits a multi-document YAML stream into objects, dropping empty documents.
var decodeObjects = helmtool.Decode

func byKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func oneOfKind(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	found := byKind(objs, kind)
	if len(found) != 1 {
		t.Fatalf("want exactly one %s, rendered %d", kind, len(found))
	}
	return found[0]
}
