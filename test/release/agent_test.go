package release

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/palisade-fw/palisade/internal/release"
	"github.com/palisade-fw/palisade/internal/signing"
	"github.com/palisade-fw/palisade/internal/userdata"
	"github.com/palisade-fw/palisade/test/netns"
)

// releaseKey is the "real" key of the test release: given by file, as for a real release.
var releaseKey struct {
	pub  []byte
	file string
}

// builtRelease runs `release agent` once (what `make release` runs) with a key from a file.
func builtRelease(t *testing.T) string {
	t.Helper()
	agentOnce.Do(func() {
		pub, priv, err := signing.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		privPEM, _ := signing.MarshalPrivateKey(priv)
		releaseKey.pub, _ = signing.MarshalPublicKey(pub)
		releaseKey.file = filepath.Join(workDir, "release.key")
		if err := os.WriteFile(releaseKey.file, privPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(workDir, "release")
		tool(t, []string{"PALISADE_SIGNING_KEY_FILE=" + releaseKey.file}, "agent", "--out", dir)
		agentDir = dir
	})
	if agentDir == "" {
		t.Fatal("the release build failed in an earlier test")
	}
	return agentDir
}

// TestAgentRelease checks the artifacts `make release` writes: every one verifies against the
// signed sha256sums, its own .sha256 and .sig with the release key (and with sha256sum(1) and
// openssl, the tools a firewall image build has); the binaries are static, for the right
// architecture, and stamped with version, commit and date; the units are the ones the userdata
// enables.
func TestAgentRelease(t *testing.T) {
	dir := builtRelease(t)
	pubPEM, err := os.ReadFile(filepath.Join(dir, release.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pubPEM, releaseKey.pub) {
		t.Fatal("the public key beside the artifacts is not the release key's")
	}
	pub, err := signing.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	names, err := release.VerifyRelease(dir, pub)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var wantNames []string
	for _, p := range release.Platforms {
		wantNames = append(wantNames, release.AgentBinaryName(p), release.BundleName(stamp, p))
	}
	wantNames = append(wantNames, release.Units...)
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("artifacts %v, want %v", names, wantNames)
	}
	if out := tool(t, nil, "verify", "--dir", dir, "--public-key", filepath.Join(dir, release.PublicKeyFile)); !strings.Contains(out, "verified") {
		t.Errorf("release verify: %s", out)
	}

	cmd := exec.Command("sha256sum", "--check", "--strict", release.ChecksumsFile)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check: %v\n%s", err, out)
	}
	// The signature scheme is plain ed25519: openssl checks it without Palisade's code.
	bin := release.AgentBinaryName(release.Platforms[0])
	sigB64, _ := os.ReadFile(filepath.Join(dir, bin+signing.SignatureSuffix))
	rawSig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigB64)))
	if err != nil {
		t.Fatal(err)
	}
	sigFile := filepath.Join(t.TempDir(), "sig.bin")
	_ = os.WriteFile(sigFile, rawSig, 0o644)
	ossl := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", filepath.Join(dir, release.PublicKeyFile), "-rawin", "-in", filepath.Join(dir, bin), "-sigfile", sigFile)
	if out, err := ossl.CombinedOutput(); err != nil {
		t.Errorf("openssl pkeyutl -verify: %v\n%s", err, out)
	}

	if !slices.Equal(release.Units, []string{userdata.FirewallControllerUnit, userdata.DroptailerUnit}) {
		t.Errorf("the release ships units %v; the userdata enables %s and %s", release.Units, userdata.FirewallControllerUnit, userdata.DroptailerUnit)
	}

	for _, p := range release.Platforms {
		path := filepath.Join(dir, release.AgentBinaryName(p))
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != elfMachine[p.Arch] {
			t.Errorf("%s is for %s", path, f.Machine)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked", path)
			}
		}
		f.Close()
		if p.Arch != runtime.GOARCH {
			continue
		}
		out, err := exec.Command(path, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("agent --version: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != stamp.Version+" (commit "+stamp.Commit+", "+stamp.Date+")" {
			t.Errorf("agent --version printed %q", got)
		}
	}
}

// TestSystemdUnits has systemd check the shipped units: `systemd-analyze verify` in a root
// laid out as the release bundle installs it (no warning at all), and `systemd-analyze
// security` rating each unit's exposure at most 3.0 ("OK").
func TestSystemdUnits(t *testing.T) {
	root := t.TempDir()
	unitDir := filepath.Join(root, release.UnitDir)
	for _, d := range []string{unitDir, filepath.Join(root, "usr/local/bin"), filepath.Join(root, "usr/lib/systemd")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The targets the units order against come from this machine's systemd.
	if out, err := exec.Command("cp", "-r", "/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copying systemd's units: %v\n%s", err, out)
	}
	for _, bin := range []string{release.AgentInstallPath, "/usr/local/bin/droptailer-client"} {
		if err := os.WriteFile(filepath.Join(root, bin), []byte("#!/bin/true\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for _, u := range release.Units {
		data, err := release.Unit(u)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(unitDir, u)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify", "--root=" + root}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, u := range release.Units {
		out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=30", "--root="+root, u).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure above 3.0 (%v)\n%s", u, err, out)
		}
	}
}

// TestAgentRunsWithTheUnitsCapabilities runs the released agent binary as the unit does:
// root without root's implicit capabilities (securebits noroot), only the unit's ambient
// capabilities, no_new_privs. It must still apply its ruleset (here in a fresh network
// namespace), so the unit's capability set is enough, not a guess.
func TestAgentRunsWithTheUnitsCapabilities(t *testing.T) {
	netns.RequirePrivileges(t)
	dir := builtRelease(t)
	bin := filepath.Join(dir, release.AgentBinaryName(release.Platform{OS: "linux", Arch: runtime.GOARCH}))
	unit, _ := release.Unit(userdata.FirewallControllerUnit)
	caps := unitSetting(t, unit, "AmbientCapabilities")
	if bounding := unitSetting(t, unit, "CapabilityBoundingSet"); !slices.Equal(caps, bounding) {
		t.Fatalf("ambient %v and bounding %v capabilities differ", caps, bounding)
	}
	if !slices.Equal(unitSetting(t, unit, "SecureBits"), []string{"noroot-locked"}) || !slices.Equal(unitSetting(t, unit, "NoNewPrivileges"), []string{"yes"}) {
		t.Fatal("the unit no longer sets SecureBits=noroot-locked and NoNewPrivileges=yes; update this test")
	}
	var capList []string
	for _, c := range caps {
		capList = append(capList, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	set := "-all," + strings.Join(capList, ",")

	lab := netns.NewLab(t)
	ns := lab.NS("caps")
	work := t.TempDir()
	config := filepath.Join(work, "config.yaml")
	_ = os.WriteFile(config, []byte(`name: caps
sources:
  static:
    firewall:
      internalPrefixes: [10.0.0.0/8]
      clusterPrefixes: [10.1.0.0/22]
    cwnp:
      egress:
      - to: [{cidr: 0.0.0.0/0}]
        ports: [{protocol: TCP, port: 443}]
controllers:
  firewall: {source: static}
  cwnp: {source: static}
nftables:
  ruleFile: `+filepath.Join(work, "firewall-controller.v4")+`
`), 0o600)
	out, err := lab.TryIn(ns, "setpriv", "--securebits=+noroot,+noroot_locked", "--no-new-privs",
		"--inh-caps="+set, "--ambient-caps="+set, "--bounding-set="+set,
		bin, "--config", config, "--once", "--wait", "30s")
	if err != nil {
		t.Fatalf("agent --once with %v only: %v\n%s", caps, err, out)
	}
	if table := lab.In(ns, "nft", "list", "table", "inet", "firewall"); !strings.Contains(table, "tcp dport 443") && !strings.Contains(table, "443") {
		t.Errorf("the ruleset is not in the kernel:\n%s", table)
	}
	// The same without CAP_NET_ADMIN fails: the check above is not vacuous.
	lab.In(ns, "nft", "flush", "ruleset")
	if out, err := lab.TryIn(ns, "setpriv", "--securebits=+noroot,+noroot_locked", "--no-new-privs",
		"--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all",
		bin, "--config", config, "--once", "--wait", "30s"); err == nil {
		t.Errorf("the agent applied its rules without any capability:\n%s", out)
	}
}

// unitSetting returns the space-separated values of key in a unit file.
func unitSetting(t *testing.T, unit []byte, key string) []string {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(unit))
	var vals []string
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			vals = append(vals, strings.Fields(v)...)
		}
	}
	if len(vals) == 0 {
		t.Fatalf("unit has no %s", key)
	}
	return vals
}
