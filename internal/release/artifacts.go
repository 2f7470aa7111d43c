package release

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/palisade-fw/palisade/internal/signing"
	"github.com/palisade-fw/palisade/internal/userdata"
)

// Files of an agent release (docs/packaging.md).
const (
	// AgentInstallDir holds the agent binary and nothing else: the self-update replaces the
	// binary by a rename in it, so the unit makes this directory, not /usr/local/bin, writable.
	AgentInstallDir = "/usr/local/lib/firewall-controller"
	// AgentInstallPath is where firewall images install the agent; the unit runs it from there.
	AgentInstallPath = AgentInstallDir + "/firewall-controller"
	// AgentLinkPath links to AgentInstallPath, under the name upstream images use.
	AgentLinkPath = "/usr/local/bin/firewall-controller"
	// UnitDir is where the units go in a firewall image.
	UnitDir = "/etc/systemd/system"
	// ChecksumsFile lists the sha256 of every artifact (sha256sum -c format).
	ChecksumsFile = "sha256sums"
	// PublicKeyFile is the PEM public key the signatures verify against.
	PublicKeyFile = "palisade-release.pub"
)

// Units are the systemd units the manager's userdata enables; a release ships each of them.
var Units = userdata.AgentUnits

//go:embed systemd
var unitFiles embed.FS

// Unit returns the content of a shipped unit.
func Unit(name string) ([]byte, error) { return unitFiles.ReadFile("systemd/" + name) }

// AgentBinaryName is the release file name of the agent for p, the file a Firewall's
// spec.controllerURL points at.
func AgentBinaryName(p Platform) string { return "palisade-agent-" + p.OS + "-" + p.Arch }

// BundleName is the release file name of the root-filesystem overlay for p.
func BundleName(info Info, p Platform) string {
	return "palisade-agent-" + info.Version + "-" + p.OS + "-" + p.Arch + ".tar.gz"
}

// ReleaseOptions describe one agent release.
type ReleaseOptions struct {
	Info Info
	// Agents maps each platform to its static agent binary.
	Agents map[Platform]string
	// Key signs every artifact.
	Key ed25519.PrivateKey
	// Dir receives the artifacts; it is emptied first.
	Dir string
}

// WriteRelease writes the agent binaries, the units and a root-filesystem overlay per
// platform into Dir, each with its detached <name>.sha256 and <name>.sig, plus the sha256sums
// file (itself signed) and the public key. It returns the artifact names.
func WriteRelease(opts ReleaseOptions) ([]string, error) {
	if err := os.RemoveAll(opts.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	artifacts := map[string][]byte{}
	units := map[string][]byte{}
	for _, u := range Units {
		data, err := Unit(u)
		if err != nil {
			return nil, fmt.Errorf("unit %s: %w", u, err)
		}
		units[u], artifacts[u] = data, data
	}
	mtime := opts.Info.Time()
	for _, p := range Platforms {
		path, ok := opts.Agents[p]
		if !ok {
			return nil, fmt.Errorf("no agent binary for %s", p)
		}
		bin, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		artifacts[AgentBinaryName(p)] = bin
		entries := []tarEntry{
			{name: "etc/", mode: 0o755, dir: true},
			{name: "etc/firewall-controller/", mode: 0o700, dir: true},
			{name: "etc/nftables/", mode: 0o755, dir: true},
			{name: "etc/systemd/", mode: 0o755, dir: true},
			{name: "etc/systemd/system/", mode: 0o755, dir: true},
			{name: "usr/", mode: 0o755, dir: true},
			{name: "usr/local/", mode: 0o755, dir: true},
			{name: "usr/local/bin/", mode: 0o755, dir: true},
			{name: AgentLinkPath[1:], link: "../lib/firewall-controller/firewall-controller"},
			{name: "usr/local/lib/", mode: 0o755, dir: true},
			{name: AgentInstallDir[1:] + "/", mode: 0o755, dir: true},
			{name: AgentInstallPath[1:], mode: 0o755, data: bin},
		}
		for _, u := range Units {
			entries = append(entries, tarEntry{name: UnitDir[1:] + "/" + u, mode: 0o644, data: units[u]})
		}
		bundle, err := tarGz(entries, mtime)
		if err != nil {
			return nil, err
		}
		artifacts[BundleName(opts.Info, p)] = bundle
	}

	names := make([]string, 0, len(artifacts))
	for n := range artifacts {
		names = append(names, n)
	}
	slices.Sort(names)
	var sums strings.Builder
	for _, n := range names {
		data := artifacts[n]
		mode := os.FileMode(0o644)
		if strings.HasPrefix(n, "palisade-agent-") && !strings.HasSuffix(n, ".tar.gz") {
			mode = 0o755
		}
		if err := writeSigned(opts.Dir, n, data, mode, opts.Key); err != nil {
			return nil, err
		}
		sums.WriteString(signing.ChecksumLine(data, n))
	}
	if err := writeFile(opts.Dir, ChecksumsFile, []byte(sums.String()), 0o644); err != nil {
		return nil, err
	}
	if err := writeFile(opts.Dir, ChecksumsFile+signing.SignatureSuffix, signing.Sign(opts.Key, []byte(sums.String())), 0o644); err != nil {
		return nil, err
	}
	pub, err := signing.MarshalPublicKey(opts.Key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return names, writeFile(opts.Dir, PublicKeyFile, pub, 0o644)
}

func writeSigned(dir, name string, data []byte, mode os.FileMode, key ed25519.PrivateKey) error {
	if err := writeFile(dir, name, data, mode); err != nil {
		return err
	}
	if err := writeFile(dir, name+signing.ChecksumSuffix, []byte(signing.ChecksumLine(data, name)), 0o644); err != nil {
		return err
	}
	return writeFile(dir, name+signing.SignatureSuffix, signing.Sign(key, data), 0o644)
}

func writeFile(dir, name string, data []byte, mode os.FileMode) error {
	return os.WriteFile(filepath.Join(dir, name), data, mode)
}

// VerifyRelease checks a release directory against pub: the signed sha256sums file, and every
// artifact it lists against that file, its own .sha256 and its .sig. It returns the artifact
// names.
func VerifyRelease(dir string, pub ed25519.PublicKey) ([]string, error) {
	sums, err := os.ReadFile(filepath.Join(dir, ChecksumsFile))
	if err != nil {
		return nil, err
	}
	sumsSig, err := os.ReadFile(filepath.Join(dir, ChecksumsFile+signing.SignatureSuffix))
	if err != nil {
		return nil, err
	}
	if err := signing.Verify(pub, sums, sumsSig); err != nil {
		return nil, fmt.Errorf("%s: %w", ChecksumsFile, err)
	}
	var names, problems []string
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s: malformed line %q", ChecksumsFile, line)
		}
		name := fields[1]
		names = append(names, name)
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if err := signing.VerifyChecksum(sums, data, name); err != nil {
			problems = append(problems, err.Error())
		}
		if own, err := os.ReadFile(filepath.Join(dir, name+signing.ChecksumSuffix)); err != nil {
			problems = append(problems, err.Error())
		} else if err := signing.VerifyChecksum(own, data, name); err != nil {
			problems = append(problems, err.Error())
		}
		if sig, err := os.ReadFile(filepath.Join(dir, name+signing.SignatureSuffix)); err != nil {
			problems = append(problems, err.Error())
		} else if err := signing.Verify(pub, data, sig); err != nil {
			problems = append(problems, name+": "+err.Error())
		}
	}
	if len(problems) > 0 {
		return names, errors.New(strings.Join(problems, "; "))
	}
	return names, nil
}

func tarGz(entries []tarEntry, mtime time.Time) ([]byte, error) {
	var tarBuf bytes.Buffer
	if err := writeTar(&tarBuf, entries, mtime); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
