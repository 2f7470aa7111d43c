// Package e2e runs the manager and the agent together: a seed and a workload API server
// (envtest), the metal-api simulator, the manager, and the agent as a real process started from
// the userdata the manager rendered, enforcing nftables rules on real traffic in network
// namespaces.
package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ignition "github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/palisade-fw/palisade/test/netns"
)

// configDir is where the userdata puts the agent's files on a firewall.
const configDir = "/etc/firewall-controller/"

// IgnitionFiles decodes the files of Ignition userdata: path -> content.
func IgnitionFiles(raw string) (map[string]string, error) {
	var cfg ignition.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return nil, fmt.Errorf("userdata is not Ignition JSON: %w", err)
	}
	files := map[string]string{}
	for _, f := range cfg.Storage.Files {
		if f.Contents.Source == nil {
			continue
		}
		content, err := decodeDataURL(*f.Contents.Source)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		files[f.Path] = content
	}
	return files, nil
}

func decodeDataURL(source string) (string, error) {
	header, data, ok := strings.Cut(strings.TrimPrefix(source, "data:"), ",")
	if !ok {
		return "", errors.New("not a data URL")
	}
	if strings.HasSuffix(header, ";base64") {
		out, err := base64.StdEncoding.DecodeString(data)
		return string(out), err
	}
	return url.PathUnescape(data)
}

// FirewallAgent is one agent process on one simulated firewall.
type FirewallAgent struct {
	Name string // the firewall (and host) name
	NS   string // the firewall's network namespace
	Dir  string // stands in for /etc/firewall-controller/

	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// StartAgent writes the agent files from the userdata into a private directory (the paths in
// the agent's config are moved there with it) and starts the agent in ns with the firewall's
// name as its host name, as on a real firewall. env adds environment variables.
func StartAgent(t *testing.T, lab *netns.Lab, ns, name, userdata string, env ...string) *FirewallAgent {
	t.Helper()
	files, err := IgnitionFiles(userdata)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for path, content := range files {
		if !strings.HasPrefix(path, configDir) {
			continue // systemd units and other host files: not needed to run the binary
		}
		target := filepath.Join(dir, strings.TrimPrefix(path, configDir))
		content = strings.ReplaceAll(content, configDir, dir+"/")
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config := filepath.Join(dir, "config.yaml")
	if _, err := os.Stat(config); err != nil {
		t.Fatalf("the userdata holds no agent config: %v", err)
	}
	bin := netns.AgentBinary(t)
	// A UTS namespace gives the agent the firewall's host name without touching the host's.
	cmd := exec.Command("ip", "netns", "exec", ns, "unshare", "--uts", "sh", "-c", `hostname "$0" && exec "$@"`,
		name, bin, "--config", config, "--log-level", "debug")
	cmd.Env = append(os.Environ(), env...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &FirewallAgent{Name: name, NS: ns, Dir: dir, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("agent %s output:\n%s", name, a.Output())
		}
	})
	return a
}

// Stop ends the agent (the firewall machine is gone).
func (a *FirewallAgent) Stop() {
	select {
	case <-a.done:
		return
	default:
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.done
	}
}

// Output is what the agent logged so far.
func (a *FirewallAgent) Output() string { return a.out.String() }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ForwardLoopback makes addr ("127.0.0.1:port", an API server on the host) reachable at the
// same address inside ns, so that the kubeconfigs from the userdata work unchanged on the
// simulated firewall: the listener lives in ns, the connections are made from the host.
func ForwardLoopback(t *testing.T, ns, addr string) {
	t.Helper()
	var lis net.Listener
	if err := netns.Do(ns, func() (err error) {
		lis, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return
				}
				defer out.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
				<-done
			}()
		}
	}()
}
