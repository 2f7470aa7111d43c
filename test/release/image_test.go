package release

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/elf"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/palisade-fw/palisade/internal/release"
)

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// TestManagerImage inspects the image `make image` writes: a valid OCI index with both
// architectures, each a scratch image holding exactly the passwd/group entries, the CA bundle,
// /tmp and a static manager binary, run as a non-root user through an exec-form entrypoint
// (no shell anywhere), with the OCI labels; the binary for this machine runs --version.
func TestManagerImage(t *testing.T) {
	checkIndex(t, release.ManagerImage, builtImage(t), func(t *testing.T, path string) {
		out, err := exec.Command(path, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("manager --version: %v\n%s", err, out)
		}
		if got := string(out); !strings.HasPrefix(got, stamp.Version+" ") || !strings.Contains(got, stamp.Commit) || !strings.Contains(got, stamp.Date) {
			t.Errorf("manager --version printed %q, want version %s, commit and date", got, stamp.Version)
		}
	})
}

// TestDroptailerImage inspects the droptailer image (`make image` writes it beside the
// manager's, the workload chart's droptailer.image): built the same way, with the droptailer
// binary instead of the manager.
func TestDroptailerImage(t *testing.T) {
	checkIndex(t, release.DroptailerImage, builtDroptailerImage(t), func(t *testing.T, path string) {
		// It has no --version; -h prints its flags.
		out, _ := exec.Command(path, "-h").CombinedOutput()
		if !strings.Contains(string(out), "-service") {
			t.Errorf("droptailer -h printed %q, want its flags", out)
		}
	})
}

// The workload chart deploys this image by default, as the user the image is made for.
func TestWorkloadChartDeploysTheDroptailerImage(t *testing.T) {
	var values struct {
		Droptailer struct {
			Image struct {
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
			} `json:"image"`
		} `json:"droptailer"`
	}
	chart := filepath.Join(repoRoot(t), "charts", "palisade-workload")
	readYAML(t, filepath.Join(chart, "values.yaml"), &values)
	if img := values.Droptailer.Image; !strings.HasSuffix(img.Repository, "/"+release.DroptailerImage.Name) || img.Tag != "" {
		t.Errorf("droptailer.image %+v, want a repository named %s and no tag (appVersion, VERSION)", img, release.DroptailerImage.Name)
	}
	tmpl, err := os.ReadFile(filepath.Join(chart, "templates", "droptailer.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	uid, gid, _ := strings.Cut(release.ImageUser, ":")
	if !strings.Contains(string(tmpl), "runAsUser: "+uid) || !strings.Contains(string(tmpl), "runAsGroup: "+gid) {
		t.Errorf("the chart's droptailer does not run as the image's user %s", release.ImageUser)
	}
}

// checkIndex checks the image index in dir/oci for spec; run runs the binary of this machine.
func checkIndex(t *testing.T, spec release.ImageSpec, dir string, run func(t *testing.T, path string)) {
	idx, err := release.ReadLayout(filepath.Join(dir, "oci"), stamp.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("the layout is not a valid image index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s", im.MediaType)
	}
	if !maps.Equal(im.Annotations, spec.Labels(stamp)) {
		t.Errorf("index annotations %v, want %v", im.Annotations, spec.Labels(stamp))
	}
	var platforms []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		p := d.Platform.OS + "/" + d.Platform.Architecture
		platforms = append(platforms, p)
		t.Run(p, func(t *testing.T) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, spec, img, d.Platform, run)
		})
	}
	slices.Sort(platforms)
	if strings.Join(platforms, " ") != "linux/amd64 linux/arm64" {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64", platforms)
	}
}

func checkImage(t *testing.T, spec release.ImageSpec, img v1.Image, p *v1.Platform, run func(t *testing.T, path string)) {
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		t.Errorf("config is for %s/%s", cf.OS, cf.Architecture)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{spec.Entrypoint}) || len(c.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want exec form [%s] alone", c.Entrypoint, c.Cmd, spec.Entrypoint)
	}
	if c.User != release.ImageUser || strings.HasPrefix(c.User, "0") || strings.HasPrefix(c.User, "root") {
		t.Errorf("user %q, want the non-root %s", c.User, release.ImageUser)
	}
	if !maps.Equal(c.Labels, spec.Labels(stamp)) {
		t.Errorf("labels %v, want %v", c.Labels, spec.Labels(stamp))
	}
	if got := c.Labels["org.opencontainers.image.version"]; got != stamp.Version {
		t.Errorf("version label %q", got)
	}

	files := flatten(t, img)
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	name := strings.TrimPrefix(spec.Entrypoint, "/")
	want := []string{"etc/", "etc/group", "etc/passwd", "etc/ssl/", "etc/ssl/certs/", "etc/ssl/certs/ca-certificates.crt", name, "tmp/"}
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Errorf("image files %v, want exactly %v (no shell, nothing else)", paths, want)
	}
	if !strings.Contains(string(files["etc/passwd"].data), ":"+release.ImageUser+":") {
		t.Errorf("/etc/passwd has no entry for %s:\n%s", release.ImageUser, files["etc/passwd"].data)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(files["etc/ssl/certs/ca-certificates.crt"].data) {
		t.Error("the CA bundle holds no certificate")
	}
	if files["tmp/"].mode&0o1777 != 0o1777 {
		t.Errorf("/tmp mode %o", files["tmp/"].mode)
	}
	bin := files[name]
	if bin.mode&0o111 == 0 || bin.uid != 0 {
		t.Errorf("%s mode %o uid %d: want executable, owned by root (not writable by the user)", spec.Entrypoint, bin.mode, bin.uid)
	}
	f, err := elf.NewFile(bytes.NewReader(bin.data))
	if err != nil {
		t.Fatalf("%s is not ELF: %v", spec.Entrypoint, err)
	}
	if f.Machine != elfMachine[p.Architecture] {
		t.Errorf("%s is for %s, the image for %s", spec.Entrypoint, f.Machine, p.Architecture)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (it needs a loader scratch does not have)", spec.Entrypoint)
		}
	}

	if p.Architecture != runtime.GOARCH {
		return
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, bin.data, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, path)
}

type imageFile struct {
	data []byte
	mode int64
	uid  int
}

// flatten reads every layer of img (no whiteouts are expected: the builder only adds files).
func flatten(t *testing.T, img v1.Image) map[string]imageFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]imageFile{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			files[strings.TrimPrefix(h.Name, "/")] = imageFile{data: data, mode: h.Mode, uid: h.Uid}
		}
		rc.Close()
	}
	return files
}

// The OCI archive holds the same index as the layout, and `make image-push` uploads exactly
// that index (to an in-process registry here).
func TestImageArchiveAndPush(t *testing.T) {
	dir := builtImage(t)
	idx, err := release.ReadLayout(filepath.Join(dir, "oci"), stamp.Version)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()

	unpacked := t.TempDir()
	f, err := os.Open(filepath.Join(dir, release.ImageName+"-"+stamp.Version+".oci.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(unpacked, h.Name)
		if h.Typeflag == tar.TypeDir {
			_ = os.MkdirAll(target, 0o755)
			continue
		}
		data, _ := io.ReadAll(tr)
		if err := os.WriteFile(target, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fromArchive, err := release.ReadLayout(unpacked, stamp.Version)
	if err != nil {
		t.Fatalf("the archive is not an OCI layout: %v", err)
	}
	if got, _ := fromArchive.Digest(); got != want {
		t.Errorf("archive holds %s, layout %s", got, want)
	}

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/palisade/palisade-manager:" + stamp.Version
	out := tool(t, nil, "push", "--layout", filepath.Join(dir, "oci"), "--ref", ref)
	if !strings.Contains(out, want.String()) {
		t.Errorf("push printed %q, want the digest %s", out, want)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pushed.Digest(); got != want {
		t.Errorf("registry holds %s, want %s", got, want)
	}
}

// Building the same commit again gives the same image, to the digest (timestamps are the
// commit date, the binaries are built with -trimpath).
func TestImageIsReproducible(t *testing.T) {
	first, err := release.ReadLayout(filepath.Join(builtImage(t), "oci"), stamp.Version)
	if err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "image")
	tool(t, nil, "image", "--out", again, "--repository", "registry.test/palisade-manager")
	second, err := release.ReadLayout(filepath.Join(again, "oci"), stamp.Version)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := first.Digest()
	b, _ := second.Digest()
	if a != b {
		t.Errorf("two builds of one commit: %s and %s", a, b)
	}
}
