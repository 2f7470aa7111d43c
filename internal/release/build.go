// Package release builds what Palisade ships: the manager's multi-arch OCI image (without a
// Docker daemon, with go-containerregistry) and the agent's signed artifacts for firewall
// images. hack/release is its command line; `make image`, `make image-push` and `make release`
// call it. docs/packaging.md describes the results.
package release

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Module is the Go module path, the prefix of the stamped variables.
const Module = "github.com/palisade-fw/palisade"

// VersionPackage holds the variables a build stamps (internal/version).
const VersionPackage = Module + "/internal/version"

// Info is what a build stamps into a binary.
type Info struct {
	Version string // the VERSION file
	Commit  string // git commit, "-dirty" appended for uncommitted changes
	Date    string // commit date, RFC 3339 in UTC
}

// Platform is a GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Platforms are the ones Palisade ships.
var Platforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}}

// LDFlags returns the -ldflags value: symbols stripped (-s -w, the binaries are not debugged
// in place) and the three version variables set.
func (i Info) LDFlags() string {
	return fmt.Sprintf("-s -w -X %[1]s.Version=%[2]s -X %[1]s.Commit=%[3]s -X %[1]s.Date=%[4]s",
		VersionPackage, i.Version, i.Commit, i.Date)
}

// Time is the commit date, the timestamp of every file and config in the artifacts so that
// rebuilding a commit gives the same bytes; the Unix epoch when Date is not a time.
func (i Info) Time() time.Time {
	t, err := time.Parse(time.RFC3339, i.Date)
	if err != nil {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

// BuildArgs are the arguments of `go build` for a shipped binary: no paths of the build machine
// (-trimpath) and no VCS data of Go's own (-buildvcs=false; the commit is stamped by LDFlags,
// and a checkout's state must not change the bytes). The Dockerfile repeats them
// (TestDockerfileMatchesBuilder keeps both equal).
func BuildArgs(info Info, out, pkg string) []string {
	return []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", info.LDFlags(), "-o", out, pkg}
}

// BuildEnv is the environment of `go build` for p: a static binary (no cgo), so that it runs
// on scratch and on any firewall image.
func BuildEnv(p Platform) []string {
	return []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Arch}
}

// Build compiles pkg (e.g. "./cmd/manager") of the module in root for p into out.
func Build(ctx context.Context, root, pkg string, p Platform, info Info, out string) error {
	cmd := exec.CommandContext(ctx, "go", BuildArgs(info, out, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), BuildEnv(p)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", pkg, p, err, b)
	}
	return nil
}

// ReadVersion reads the VERSION file in root, the one source of the release version (the
// charts' version and appVersion must equal it; see TestChartVersionsFollowVERSION).
func ReadVersion(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" || strings.ContainsAny(v, " \t\n/:") {
		return "", fmt.Errorf("VERSION %q is not a version", v)
	}
	return v, nil
}

// GitInfo returns the Info of the checkout in root: VERSION, HEAD and its commit date. Outside
// a git checkout the commit is "unknown" and the date the epoch.
func GitInfo(root string) (Info, error) {
	v, err := ReadVersion(root)
	if err != nil {
		return Info{}, err
	}
	info := Info{Version: v, Commit: "unknown", Date: time.Unix(0, 0).UTC().Format(time.RFC3339)}
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if commit, err := git("rev-parse", "HEAD"); err == nil && commit != "" {
		info.Commit = commit
		if status, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && status != "" {
			info.Commit += "-dirty"
		}
		if date, err := git("log", "-1", "--format=%cI"); err == nil {
			if t, err := time.Parse(time.RFC3339, date); err == nil {
				info.Date = t.UTC().Format(time.RFC3339)
			}
		}
	}
	return info, nil
}
