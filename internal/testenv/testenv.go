// Package testenv starts the real API server (envtest) with Palisade's CRDs for tests. The
// kube-apiserver and etcd binaries are built from source by hack/envtest-assets.sh; `make test`
// exports KUBEBUILDER_ASSETS, and a bare `go test` builds or reuses them too.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/palisade-fw/palisade/internal/modroot"
	"github.com/palisade-fw/palisade/internal/scheme"
)

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) { return modroot.Find() }

// Scheme returns the scheme shared by Palisade's binaries and tests.
func Scheme() *runtime.Scheme { return scheme.New() }

// EnsureAssets points KUBEBUILDER_ASSETS at the source-built binaries when it is not set.
func EnsureAssets() error {
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		return nil
	}
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack", "envtest-assets.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("building envtest binaries: %w", err)
	}
	return os.Setenv("KUBEBUILDER_ASSETS", strings.TrimSpace(string(out)))
}

// New returns an envtest environment with the generated CRDs installed. Webhook options may be
// added by the caller before Start.
func New() (*envtest.Environment, error) {
	if err := EnsureAssets(); err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme(),
	}, nil
}

// Start is New followed by Start.
func Start() (*envtest.Environment, *rest.Config, error) {
	env, err := New()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("starting envtest: %w", err)
	}
	return env, cfg, nil
}
