package release

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/palisade-fw/palisade/internal/release"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T, path string) [][]instruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var pending string
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if pending == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			pending += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		full := pending + trimmed
		pending = ""
		cmd, args, _ := strings.Cut(full, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %q", full)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	return stages
}

func find(stage []instruction, cmd string) []string {
	var out []string
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// TestDockerfileMatchesBuilder keeps the Dockerfile equivalent to `make image`: the same go
// build command (static, trimmed, the same ldflags), a scratch final stage with the same files,
// user, working directory, exec-form entrypoint and labels.
func TestDockerfileMatchesBuilder(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(repoRoot(t), "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("%d stages, want build and final", len(stages))
	}
	build, final := stages[0], stages[1]
	placeholders := release.Info{Version: "${VERSION}", Commit: "${COMMIT}", Date: "${DATE}"}

	wantBuild := "CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go " + shellJoin(release.BuildArgs(placeholders, release.ImageEntrypoint, "./cmd/manager"))
	if !slices.Contains(find(build, "RUN"), wantBuild) {
		t.Errorf("the build stage does not run the builder's command\n  %s\nRUN lines:\n  %s", wantBuild, strings.Join(find(build, "RUN"), "\n  "))
	}
	if env := release.BuildEnv(release.Platform{OS: "${TARGETOS}", Arch: "${TARGETARCH}"}); !strings.HasPrefix(wantBuild, strings.Join(env, " ")+" ") {
		t.Errorf("builder environment %v changed; update this test and the Dockerfile", env)
	}

	if from := find(final, "FROM"); len(from) != 1 || from[0] != "scratch" {
		t.Errorf("final stage FROM %v, want scratch", from)
	}
	if u := find(final, "USER"); !slices.Equal(u, []string{release.ImageUser}) {
		t.Errorf("USER %v, want %s", u, release.ImageUser)
	}
	if w := find(final, "WORKDIR"); !slices.Equal(w, []string{"/"}) {
		t.Errorf("WORKDIR %v, want /", w)
	}
	ep := find(final, "ENTRYPOINT")
	var entrypoint []string
	if len(ep) != 1 || json.Unmarshal([]byte(ep[0]), &entrypoint) != nil || !slices.Equal(entrypoint, []string{release.ImageEntrypoint}) {
		t.Errorf("ENTRYPOINT %v, want the exec form [%q]", ep, release.ImageEntrypoint)
	}
	if cmd := find(final, "CMD"); len(cmd) != 0 {
		t.Errorf("CMD %v: the builder sets none", cmd)
	}

	labels := map[string]string{}
	for _, l := range find(final, "LABEL") {
		for _, kv := range splitLabels(l) {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
	}
	if want := release.Labels(placeholders); !maps.Equal(labels, want) {
		t.Errorf("LABELs %v, want %v", labels, want)
	}

	copies := find(final, "COPY")
	for _, want := range []string{
		"internal/release/rootfs/ /",
		"--from=build " + release.DefaultCABundle + " " + release.DefaultCABundle,
		"--from=build /rootfs/tmp /tmp",
		"--from=build " + release.ImageEntrypoint + " " + release.ImageEntrypoint,
	} {
		if !slices.Contains(copies, want) {
			t.Errorf("final stage lacks COPY %s", want)
		}
	}
	if len(copies) != 4 {
		t.Errorf("final stage copies %v; the builder adds exactly the base files and the binary", copies)
	}
}

// shellJoin quotes arguments with spaces the way the Dockerfile writes them.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if strings.Contains(a, " ") {
			a = `"` + a + `"`
		}
		quoted[i] = a
	}
	return strings.Join(quoted, " ")
}

// splitLabels splits `k="v w" k2=v2` at spaces outside quotes.
func splitLabels(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// One version everywhere: VERSION is the charts' version and appVersion, and the manager
// chart's image tag defaults to appVersion, so a release's chart pulls that release's image.
// The chart runs the image's user.
func TestChartsFollowVERSION(t *testing.T) {
	root := repoRoot(t)
	version, err := release.ReadVersion(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, chart := range []string{"palisade", "palisade-workload"} {
		var meta struct {
			Version    string `json:"version"`
			AppVersion string `json:"appVersion"`
		}
		readYAML(t, filepath.Join(root, "charts", chart, "Chart.yaml"), &meta)
		if meta.Version != version || meta.AppVersion != version {
			t.Errorf("charts/%s: version %q appVersion %q, VERSION %q (make set-version)", chart, meta.Version, meta.AppVersion, version)
		}
	}
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
		PodSecurityContext struct {
			RunAsUser  int64 `json:"runAsUser"`
			RunAsGroup int64 `json:"runAsGroup"`
		} `json:"podSecurityContext"`
	}
	readYAML(t, filepath.Join(root, "charts", "palisade", "values.yaml"), &values)
	if values.Image.Tag != "" {
		t.Errorf("image.tag %q pins a version; leave it empty so that appVersion (VERSION) applies", values.Image.Tag)
	}
	if !strings.HasSuffix(values.Image.Repository, "/"+release.ImageName) {
		t.Errorf("image.repository %q does not name %s", values.Image.Repository, release.ImageName)
	}
	helpers, err := os.ReadFile(filepath.Join(root, "charts", "palisade", "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(helpers), ".Chart.AppVersion") {
		t.Error("the manager chart's image tag does not default to .Chart.AppVersion")
	}
	if got := fmtUser(values.PodSecurityContext.RunAsUser, values.PodSecurityContext.RunAsGroup); got != release.ImageUser {
		t.Errorf("chart runs %s, the image's user is %s", got, release.ImageUser)
	}
}

func fmtUser(uid, gid int64) string {
	return strconv.FormatInt(uid, 10) + ":" + strconv.FormatInt(gid, 10)
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
