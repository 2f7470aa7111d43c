package release

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"debug/elf"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/crypto/ssh"

	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/release"
	"github.com/palisade-fw/palisade/internal/signing"
	"github.com/palisade-fw/palisade/internal/testenv/syncbuf"
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

	// The userdata enables no unit the release does not ship.
	for _, u := range userdata.AgentUnits {
		if !slices.Contains(names, u) {
			t.Errorf("the userdata enables %s, which the release does not ship (%v)", u, names)
		}
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
	for _, d := range []string{unitDir, filepath.Join(root, release.AgentInstallDir), filepath.Join(root, "usr/lib/systemd")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The targets the units order against come from this machine's systemd.
	if out, err := exec.Command("cp", "-r", "/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copying systemd's units: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(root, release.AgentInstallPath), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
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
// capabilities, no_new_privs, and a file system that is read-only but for the unit's
// ReadWritePaths=, BindPaths= and StateDirectory= (a read-only bind mount of a firewall's
// file system laid out under a temporary root, with those paths bound writable again). Every
// feature that needs a capability or writes a file runs: the ruleset in the kernel (and its
// rule file), the SNAT address on its interface and its state file, authorized_keys written
// into the admin user's own .ssh and given to that user, the DNS proxy bound to port 53, the
// dropped-packet reader on nflog, a name learned through the proxy in its state file, and a
// signed self-update replacing the binary. Then the
// same without each of the unit's capabilities must fail where that capability is used, so
// the unit grants what the agent needs, and nothing it does not use.
func TestAgentRunsWithTheUnitsCapabilities(t *testing.T) {
	netns.RequirePrivileges(t)
	dir := builtRelease(t)
	bin := filepath.Join(dir, release.AgentBinaryName(release.Platform{OS: "linux", Arch: runtime.GOARCH}))
	unit, _ := release.Unit(userdata.FirewallControllerUnit)
	caps := unitSetting(t, unit, "AmbientCapabilities")
	if bounding := unitSetting(t, unit, "CapabilityBoundingSet"); !slices.Equal(caps, bounding) {
		t.Fatalf("ambient %v and bounding %v capabilities differ", caps, bounding)
	}
	if !slices.Equal(unitSetting(t, unit, "SecureBits"), []string{"noroot-locked"}) || !slices.Equal(unitSetting(t, unit, "NoNewPrivileges"), []string{"yes"}) ||
		!slices.Equal(unitSetting(t, unit, "ProtectSystem"), []string{"strict"}) {
		t.Fatal("the unit no longer sets SecureBits=noroot-locked, NoNewPrivileges=yes and ProtectSystem=strict; update this test")
	}
	if execStart := unitSetting(t, unit, "ExecStart"); execStart[0] != release.AgentInstallPath {
		t.Fatalf("the unit runs %s, the release installs %s", execStart[0], release.AgentInstallPath)
	}
	writable := unitWritable(t, unit)

	lab := netns.NewLab(t)
	ns := lab.NS("caps")
	// The SNAT network's interface (a veth: the test kernels have no dummy module).
	lab.In(ns, "ip", "link", "add", "vlan104", "type", "veth", "peer", "name", "vlan104-peer")
	lab.In(ns, "ip", "link", "set", "vlan104", "up")
	h := newFirewallHost(t, bin)
	config := h.config(t, h.serveUpdate(t, ns, "9.9.9-caps"))
	serveUpstreamDNS(t, ns)

	// Everything works with exactly the unit's capabilities and writable paths.
	run := h.start(t, ns, writable, caps, config)
	var missing []string
	ok := run.waitFor(func() bool {
		missing = h.missing(t, lab, ns)
		return len(missing) == 0
	})
	out := run.stop()
	if !ok {
		t.Fatalf("with the unit's capabilities %v and writable paths %v the agent did not get to: %s\n%s", caps, writable, strings.Join(missing, "; "), out)
	}
	for _, bad := range []string{"DNS proxy not started", "dropped-packet reader failed", `"msg":"host state"`, `"msg":"self-update"`} {
		if strings.Contains(out, bad) {
			t.Errorf("the agent logged %q with the unit's capabilities:\n%s", bad, out)
		}
	}

	// Without any one of them, what needs it fails.
	needs := map[string][]string{
		"CAP_NET_BIND_SERVICE": {"DNS proxy not started", "permission denied"},
		"CAP_DAC_OVERRIDE":     {"authorized_keys", "permission denied"},
		"CAP_CHOWN":            {"authorized_keys", "operation not permitted"},
	}
	for _, c := range caps {
		t.Run("without "+c, func(t *testing.T) {
			fewer := slices.DeleteFunc(slices.Clone(caps), func(x string) bool { return x == c })
			h := newFirewallHost(t, bin)
			config := h.config(t, h.serveUpdate(t, ns, "9.9.9-caps"))
			if c == "CAP_NET_ADMIN" {
				// No ruleset at all: the one-shot apply fails.
				lab.In(ns, "nft", "flush", "ruleset")
				if out, err := h.once(ns, writable, fewer, config); err == nil {
					t.Errorf("the agent applied its rules without %s:\n%s", c, out)
				}
				return
			}
			want, known := needs[c]
			if !known {
				t.Fatalf("the unit grants %s, which this test does not know the agent to need: add it here with what fails without it, or take it out of the unit", c)
			}
			run := h.start(t, ns, writable, fewer, config)
			ok := run.waitFor(func() bool {
				out := run.output()
				return strings.Contains(out, want[0]) && strings.Contains(out, want[1])
			})
			out := run.stop()
			if !ok {
				t.Errorf("without %s the agent never logged %q with %q:\n%s", c, want[0], want[1], out)
			}
		})
	}
}

// unitWritable returns what the unit leaves writable under ProtectSystem=strict:
// ReadWritePaths=, BindPaths= and /var/lib/<StateDirectory=>; optional ("-") paths without
// the prefix.
func unitWritable(t *testing.T, unit []byte) []string {
	t.Helper()
	var paths []string
	for _, key := range []string{"ReadWritePaths", "BindPaths"} {
		for _, p := range unitSetting(t, unit, key) {
			paths = append(paths, strings.TrimPrefix(p, "-"))
		}
	}
	for _, d := range unitSetting(t, unit, "StateDirectory") {
		paths = append(paths, "/var/lib/"+d)
	}
	return paths
}

// firewallHost is a firewall's file system under a temporary root, as the release bundle, the
// image and the userdata leave it: the agent binary, its config directory, /etc/nftables, the
// state directory systemd creates, and the admin user's home (here nobody's, 0700, which root
// without CAP_DAC_OVERRIDE cannot write into).
type firewallHost struct {
	root   string
	binary []byte
	key    ed25519.PrivateKey
	sshKey string
}

const adminUser, adminUID = "nobody", 65534

func newFirewallHost(t *testing.T, bin string) *firewallHost {
	t.Helper()
	h := &firewallHost{root: t.TempDir()}
	var err error
	if h.binary, err = os.ReadFile(bin); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{
		release.AgentInstallDir: 0o755, "/etc/firewall-controller": 0o700, "/etc/nftables": 0o755,
		config.StateDir: 0o700, "/home": 0o755,
	} {
		if err := os.MkdirAll(h.path(p), mode); err != nil {
			t.Fatal(err)
		}
	}
	sshDir := filepath.Dir(config.DefaultAuthorizedKeysFile)
	for _, d := range []string{filepath.Dir(sshDir), sshDir} {
		if err := os.Mkdir(h.path(d), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(h.path(d), adminUID, adminUID); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(h.path(release.AgentInstallPath), h.binary, 0o755); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h.key = priv
	pubPEM, _ := signing.MarshalPublicKey(pub)
	if err := os.WriteFile(h.path("/etc/firewall-controller/palisade-release.pub"), pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(sshPub)
	if err != nil {
		t.Fatal(err)
	}
	h.sshKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	return h
}

func (h *firewallHost) path(p string) string { return filepath.Join(h.root, p) }

// signedUpdate is the agent version served for the self-update, signed with the host's key.
const (
	learnedName = "learned.example"
	learnedAddr = "203.0.113.7"
	upstreamDNS = "127.0.0.1:5353"
)

// serveUpstreamDNS answers learnedName in ns on upstreamDNS, the proxy's upstream.
func serveUpstreamDNS(t *testing.T, ns string) {
	t.Helper()
	var pc net.PacketConn
	if err := netns.Do(ns, func() (err error) { pc, err = net.ListenPacket("udp", upstreamDNS); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		if q := req.Question[0]; q.Qtype == dns.TypeA && strings.EqualFold(q.Name, learnedName+".") {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP(learnedAddr)})
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
}

type signedUpdate struct {
	url, version string
	binary       []byte
}

// serveUpdate serves a signed "agent" of version inside ns: a script that reports the version,
// which is all the updater runs before installing it.
func (h *firewallHost) serveUpdate(t *testing.T, ns, version string) signedUpdate {
	t.Helper()
	name := release.AgentBinaryName(release.Platform{OS: "linux", Arch: runtime.GOARCH})
	u := signedUpdate{version: version, binary: []byte("#!/bin/sh\necho " + version + "\n")}
	files := map[string][]byte{
		"/" + name:                           u.binary,
		"/" + name + signing.ChecksumSuffix:  []byte(signing.ChecksumLine(u.binary, name)),
		"/" + name + signing.SignatureSuffix: signing.Sign(h.key, u.binary),
	}
	var lis net.Listener
	if err := netns.Do(ns, func() (err error) { lis, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.url = "http://" + lis.Addr().String() + "/" + name
	return u
}

// config writes the agent's config with every host path at its default under the root.
func (h *firewallHost) config(t *testing.T, u signedUpdate) string {
	t.Helper()
	cfg := fmt.Sprintf(`name: caps
sources:
  static:
    firewall:
      internalPrefixes: [10.0.0.0/8]
      clusterPrefixes: [10.1.0.0/22]
      firewallNetworks:
      - {networkID: internet, networkType: external, vrf: 104, prefixes: [185.1.2.0/24]}
      egressRules: [{networkID: internet, ips: [185.1.2.3]}]
      sshPublicKeys: [%q]
      controllerURL: %s
      controllerVersion: %s
    cwnp:
      egress:
      - to: [{cidr: 0.0.0.0/0}]
        ports: [{protocol: TCP, port: 443}]
      - toFQDNs: [{matchName: %s}]
        ports: [{protocol: TCP, port: 8443}]
controllers:
  firewall:
    source: static
    droptailer: {enabled: true}
    selfUpdate: {enabled: true, publicKeyFile: %s, restartCommand: [/bin/true]}
  cwnp: {source: static}
nftables: {ruleFile: %s}
host:
  egressStateFile: %s
  ssh: {authorizedKeysFile: %s, user: %s}
dns: {stateFile: %s, stateInterval: 1s, upstreams: ["%s"]}
distance: {frrFile: "-"}
`, h.sshKey, u.url, u.version, learnedName, h.path("/etc/firewall-controller/palisade-release.pub"), h.path(model.DefaultRuleFile),
		h.path(config.DefaultEgressStateFile), h.path(config.DefaultAuthorizedKeysFile), adminUser, h.path(config.DefaultDNSStateFile), upstreamDNS)
	p := h.path("/etc/firewall-controller/config.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sandboxed is the command line that runs the agent in ns as the unit would: a private
// mount namespace in which the root is read-only but for writable, then setpriv with caps.
func (h *firewallHost) sandboxed(ns string, writable, caps []string, args ...string) *exec.Cmd {
	var capList []string
	for _, c := range caps {
		capList = append(capList, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	set := strings.Join(append([]string{"-all"}, capList...), ",")
	script := `set -e
root=$1; shift
mount --bind "$root" "$root"
while [ "$1" != -- ]; do
  if [ -e "$root$1" ]; then mount --bind "$root$1" "$root$1"; fi
  shift
done
shift
mount -o remount,bind,ro "$root"
exec "$@"`
	argv := []string{"netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", h.root}
	argv = append(argv, writable...)
	argv = append(argv, "--", "setpriv", "--securebits=+noroot,+noroot_locked", "--no-new-privs",
		"--inh-caps="+set, "--ambient-caps="+set, "--bounding-set="+set, h.path(release.AgentInstallPath))
	return exec.Command("ip", append(argv, args...)...)
}

func (h *firewallHost) once(ns string, writable, caps []string, config string) (string, error) {
	out, err := h.sandboxed(ns, writable, caps, "--config", config, "--once", "--wait", "30s").CombinedOutput()
	return string(out), err
}

// agentRun is a running agent and its output.
type agentRun struct {
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

func (h *firewallHost) start(t *testing.T, ns string, writable, caps []string, config string) *agentRun {
	t.Helper()
	r := &agentRun{cmd: h.sandboxed(ns, writable, caps, "--config", config), out: &syncbuf.Buffer{}, done: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// waitFor polls cond until it holds (true), the agent exits or two minutes pass (false).
func (r *agentRun) waitFor(cond func() bool) bool {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		select {
		case <-r.done:
			return cond()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return false
}

func (r *agentRun) output() string { return r.out.String() }

// stop ends the agent and returns its output.
func (r *agentRun) stop() string {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	}
	return r.out.String()
}

// missing lists what the agent has not done yet of what the test runs it for.
func (h *firewallHost) missing(t *testing.T, lab *netns.Lab, ns string) []string {
	var m []string
	if table, _ := lab.TryIn(ns, "nft", "list", "table", "inet", "firewall"); !strings.Contains(table, "443") {
		m = append(m, "the ruleset in the kernel")
	}
	if rules, err := os.ReadFile(h.path(model.DefaultRuleFile)); err != nil || !strings.Contains(string(rules), "443") {
		m = append(m, "the rule file "+model.DefaultRuleFile)
	}
	if addrs, _ := lab.TryIn(ns, "ip", "-o", "addr", "show", "dev", "vlan104"); !strings.Contains(addrs, "185.1.2.3/32") {
		m = append(m, "the SNAT address on vlan104")
	}
	if state, err := os.ReadFile(h.path(config.DefaultEgressStateFile)); err != nil || !strings.Contains(string(state), "185.1.2.3") {
		m = append(m, "the state file "+config.DefaultEgressStateFile)
	}
	keys, err := os.ReadFile(h.path(config.DefaultAuthorizedKeysFile))
	if err != nil || !strings.Contains(string(keys), h.sshKey) {
		m = append(m, "authorized_keys")
	} else if st, err := os.Stat(h.path(config.DefaultAuthorizedKeysFile)); err != nil || st.Sys().(*syscall.Stat_t).Uid != adminUID || st.Mode().Perm() != 0o600 {
		m = append(m, "authorized_keys owned by the admin user, mode 0600")
	}
	if socks, _ := lab.TryIn(ns, "ss", "-Hlntu"); strings.Count(socks, ":53 ") < 2 {
		m = append(m, "the DNS proxy on port 53 (UDP and TCP)")
	} else if state, err := os.ReadFile(h.path(config.DefaultDNSStateFile)); err != nil || !strings.Contains(string(state), learnedName) {
		// Ask through the proxy until the learned name is saved (within stateInterval).
		_ = netns.Do(ns, func() error {
			q := new(dns.Msg).SetQuestion(learnedName+".", dns.TypeA)
			_, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, "127.0.0.1:53")
			return err
		})
		m = append(m, "the name learned through the DNS proxy in "+config.DefaultDNSStateFile)
	}
	current, _ := os.ReadFile(h.path(release.AgentInstallPath))
	previous, _ := os.ReadFile(h.path(release.AgentInstallPath + ".previous"))
	if !strings.HasPrefix(string(current), "#!/bin/sh\n") || !bytes.Equal(previous, h.binary) {
		m = append(m, "the self-update replacing "+release.AgentInstallPath)
	}
	return m
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
