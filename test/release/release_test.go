// Package release tests what `make image` and `make release` produce, by running the same
// tool (hack/release) the Makefile runs: the manager image inspected with go-containerregistry
// and its amd64 binary run, the agent artifacts verified against their sums and signatures, the
// systemd units checked by systemd itself, and the Dockerfile held equal to the builder.
//
// Building the manager and the agent for two architectures is the expensive part; each is
// built once per test run (and Go's build cache makes later runs cheap).
package release

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/palisade-fw/palisade/internal/release"
	"github.com/palisade-fw/palisade/internal/testenv"
)

// stamp is what the test builds stamp in; fixed, so that the checks do not depend on git.
var stamp = release.Info{Version: "0.0.0-test", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-01-02T03:04:05Z"}

var (
	workDir  string
	toolOnce sync.Once
	toolPath string
	toolErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "palisade-release-test-")
	if err != nil {
		panic(err)
	}
	workDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// tool runs hack/release (built once) in the repository with the test stamp.
func tool(t *testing.T, env []string, args ...string) string {
	t.Helper()
	toolOnce.Do(func() {
		toolPath = filepath.Join(workDir, "release-tool")
		cmd := exec.Command("go", "build", "-o", toolPath, "./hack/release")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			toolErr = fmt.Errorf("building hack/release: %v\n%s", err, out)
		}
	})
	if toolErr != nil {
		t.Fatal(toolErr)
	}
	if len(args) > 0 && args[0] != "verify" {
		args = append(args, "--version", stamp.Version, "--commit", stamp.Commit, "--date", stamp.Date)
	}
	cmd := exec.Command(toolPath, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("release %v: %v\n%s", args, err, out)
	}
	return string(out)
}

var (
	imageOnce sync.Once
	imageDir  string
	agentOnce sync.Once
	agentDir  string
)

var (
	droptailerOnce sync.Once
	droptailerDir  string
)

// builtDroptailerImage runs `release image --image droptailer` once.
func builtDroptailerImage(t *testing.T) string {
	t.Helper()
	droptailerOnce.Do(func() {
		dir := filepath.Join(workDir, "image-droptailer")
		tool(t, nil, "image", "--image", "droptailer", "--out", dir, "--repository", "registry.test/palisade-droptailer")
		droptailerDir = dir
	})
	if droptailerDir == "" {
		t.Fatal("the droptailer image build failed in an earlier test")
	}
	return droptailerDir
}

// builtImage runs `release image` once (what `make image` runs) and returns its output dir.
func builtImage(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() {
		dir := filepath.Join(workDir, "image")
		tool(t, nil, "image", "--out", dir, "--repository", "registry.test/palisade-manager")
		imageDir = dir
	})
	if imageDir == "" {
		t.Fatal("the image build failed in an earlier test")
	}
	return imageDir
}
