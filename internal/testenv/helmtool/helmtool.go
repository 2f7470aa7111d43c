// Package helmtool finds the helm binary the tests use (the one `make helm` builds into the
// cache, or $HELM) and renders the chart with it.
package helmtool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/palisade-fw/palisade/internal/testenv"
)

// Version must match HELM_VERSION in the Makefile.
const Version = "v3.22.0"

// KubeVersion is the envtest API server version the chart is rendered for.
const KubeVersion = "v1.36.3"

// Binary returns $HELM, else the cached build (`make helm` builds the same), else builds it
// with go install, outside the module graph (the helm SDK would pull k8s.io modules off
// Palisade's pins).
func Binary() (string, error) {
	if p := os.Getenv("HELM"); p != "" {
		return p, nil
	}
	base := os.Getenv("PALISADE_CACHE")
	if base == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(dir, "palisade")
	}
	bin := filepath.Join(base, "helm-"+Version)
	path := filepath.Join(bin, "helm")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Fprintf(os.Stderr, "building helm %s into %s (run `make helm` to do this once ahead)\n", Version, bin)
	cmd := exec.Command("go", "install", "helm.sh/helm/v3/cmd/helm@"+Version)
	// GOFLAGS= keeps -mod settings of the caller from applying to helm's own module.
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOBIN="+bin)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install helm: %w", err)
	}
	return path, nil
}

// Template renders charts/palisade as release name in namespace with extra helm arguments
// (--set ...) and returns the objects.
func Template(name, namespace string, args ...string) ([]*unstructured.Unstructured, error) {
	helm, err := Binary()
	if err != nil {
		return nil, err
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "palisade-helm-home-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	cmd := exec.Command(helm, append([]string{"template", name, filepath.Join(root, "charts", "palisade"),
		"--namespace", namespace, "--kube-version", KubeVersion}, args...)...)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm template: %w\n%s", err, errOut.String())
	}
	return Decode(out.String())
}

// Decode splits a multi-document YAML stream (helm's output) into objects, dropping empty
// documents.
func Decode(manifests string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(doc) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: doc})
		}
	}
}
