package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/palisade-fw/palisade/internal/signing"
)

var testInfo = Info{Version: "1.2.3", Commit: "0123456789abcdef", Date: "2026-01-02T03:04:05Z"}

func fakeBinaries(t *testing.T, kind string) map[Platform]string {
	t.Helper()
	dir := t.TempDir()
	bins := map[Platform]string{}
	for _, p := range Platforms {
		path := filepath.Join(dir, kind+"-"+p.Arch)
		if err := os.WriteFile(path, []byte("\x7fELF "+kind+" for "+p.String()), 0o755); err != nil {
			t.Fatal(err)
		}
		bins[p] = path
	}
	return bins
}

func testCABundle(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, []byte("-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The same inputs give the same image, to the digest: every timestamp is the commit date.
func TestBuildImageIsReproducibleAndValid(t *testing.T) {
	opts := ImageOptions{Info: testInfo, Binaries: fakeBinaries(t, "manager"), CABundle: testCABundle(t)}
	a, err := BuildImage(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildImage(opts)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("two builds of the same input: %s and %s", da, db)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if _, err := WriteLayout(dir, a, testInfo.Version, "example/palisade-manager:1.2.3"); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLayout(dir, testInfo.Version)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := back.Digest(); d != da {
		t.Errorf("layout holds %s, built %s", d, da)
	}
	// What was written, as a consumer reads it: every digest, size and config checked.
	if err := validate.Index(back); err != nil {
		t.Fatalf("invalid index: %v", err)
	}
	if _, err := ReadLayout(dir, "other"); err == nil {
		t.Error("a tag that is not in the layout was found")
	}
	delete(opts.Binaries, Platforms[1])
	if _, err := BuildImage(opts); err == nil {
		t.Error("an image without an arm64 binary was built")
	}
}

func TestLDFlagsStampVersionCommitDate(t *testing.T) {
	got := testInfo.LDFlags()
	for _, want := range []string{"-s -w", VersionPackage + ".Version=1.2.3", VersionPackage + ".Commit=0123456789abcdef", VersionPackage + ".Date=2026-01-02T03:04:05Z"} {
		if !strings.Contains(got, want) {
			t.Errorf("ldflags %q lack %q", got, want)
		}
	}
	if (Info{Date: "yesterday"}).Time().Unix() != 0 {
		t.Error("a date that is not RFC 3339 must give the epoch")
	}
}

func TestWriteAndVerifyRelease(t *testing.T) {
	pub, priv, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	names, err := WriteRelease(ReleaseOptions{Info: testInfo, Agents: fakeBinaries(t, "agent"), Key: priv, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"firewall-controller.service",
		"palisade-agent-1.2.3-linux-amd64.tar.gz", "palisade-agent-1.2.3-linux-arm64.tar.gz",
		"palisade-agent-linux-amd64", "palisade-agent-linux-arm64"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("artifacts %v, want %v", names, want)
	}
	if got, err := VerifyRelease(dir, pub); err != nil || len(got) != len(want) {
		t.Fatalf("verify: %v (%d artifacts)", err, len(got))
	}
	pemPub, _ := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if k, err := signing.ParsePublicKey(pemPub); err != nil || !k.Equal(pub) {
		t.Fatalf("public key file: %v", err)
	}

	// The bundle is the overlay a firewall image unpacks at /.
	bundle, _ := os.ReadFile(filepath.Join(dir, "palisade-agent-1.2.3-linux-arm64.tar.gz"))
	files := untarGz(t, bundle)
	if string(files[AgentInstallPath[1:]]) != "\x7fELF agent for linux/arm64" {
		t.Errorf("bundle binary: %q", files[AgentInstallPath[1:]])
	}
	// The upstream name links to it; the link resolves inside the bundle.
	link, ok := strings.CutPrefix(string(files[AgentLinkPath[1:]]), "symlink:")
	if !ok || path.Join(path.Dir(AgentLinkPath), link) != AgentInstallPath {
		t.Errorf("%s is %q, want a link to %s", AgentLinkPath, files[AgentLinkPath[1:]], AgentInstallPath)
	}
	for _, u := range Units {
		unit, _ := Unit(u)
		if !bytes.Equal(files["etc/systemd/system/"+u], unit) {
			t.Errorf("bundle lacks unit %s", u)
		}
	}

	// Another key, a tampered artifact and a tampered sums file are all refused.
	other, _, _ := signing.GenerateKey()
	if _, err := VerifyRelease(dir, other); !errors.Is(err, signing.ErrBadSignature) {
		t.Errorf("other key: %v", err)
	}
	bin := filepath.Join(dir, "palisade-agent-linux-amd64")
	orig, _ := os.ReadFile(bin)
	if err := os.WriteFile(bin, append(orig, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyRelease(dir, pub); err == nil || !strings.Contains(err.Error(), "palisade-agent-linux-amd64") {
		t.Errorf("tampered binary: %v", err)
	}
	_ = os.WriteFile(bin, orig, 0o755)
	sums := filepath.Join(dir, ChecksumsFile)
	s, _ := os.ReadFile(sums)
	_ = os.WriteFile(sums, append(s, []byte(signing.ChecksumLine([]byte("x"), "extra"))...), 0o644)
	if _, err := VerifyRelease(dir, pub); !errors.Is(err, signing.ErrBadSignature) {
		t.Errorf("tampered sums file: %v", err)
	}
}

func untarGz(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Typeflag == tar.TypeSymlink {
			b = []byte("symlink:" + h.Linkname)
		}
		files[h.Name] = b
	}
}
