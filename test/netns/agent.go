package netns

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	agentBin  string
	buildErr  error
	buildDir  string
)

// AgentBinary builds cmd/agent once per test binary run and returns its path.
func AgentBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "palisade-agent-bin-")
		if buildErr != nil {
			return
		}
		agentBin = filepath.Join(buildDir, "agent")
		out, err := exec.Command("go", "build", "-o", agentBin, "github.com/palisade-fw/palisade/cmd/agent").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return agentBin
}

// CleanupBinary removes the built agent; call it from TestMain.
func CleanupBinary() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// Agent is the agent binary configured for one firewall namespace.
type Agent struct {
	lab     *Lab
	NS      string
	Dir     string
	RuleDir string
	// Nftables holds extra lines of the config's nftables block (indented by two spaces),
	// e.g. "  defaultEgress: false\n".
	Nftables string
}

// NewAgent prepares an agent for ns with a private directory for its config and rule file.
func (l *Lab) NewAgent(ns string) *Agent {
	l.t.Helper()
	AgentBinary(l.t)
	dir := l.t.TempDir()
	return &Agent{lab: l, NS: ns, Dir: dir, RuleDir: filepath.Join(dir, "nftables")}
}

// RuleFile is where the agent writes its ruleset.
func (a *Agent) RuleFile() string { return filepath.Join(a.RuleDir, "firewall-controller.v4") }

// Once writes config (YAML; the nftables block is appended) and runs `agent --once` inside
// the namespace. It returns the agent's output and error.
func (a *Agent) Once(config string, extraArgs ...string) (string, error) {
	path := filepath.Join(a.Dir, "config.yaml")
	full := config + fmt.Sprintf("\nnftables:\n  ruleFile: %s\n", a.RuleFile()) + a.Nftables
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		return "", err
	}
	args := append([]string{"--config", path, "--once", "--wait", "5s"}, extraArgs...)
	return a.lab.TryIn(a.NS, append([]string{agentBin}, args...)...)
}

// MustApply runs Once and fails the test on error.
func (a *Agent) MustApply(config string) {
	a.lab.t.Helper()
	if out, err := a.Once(config); err != nil {
		a.lab.t.Fatalf("agent --once in %s: %v\n%s", a.NS, err, out)
	}
}

// Counter returns the packets counted by a named counter of the agent's table.
func (l *Lab) Counter(ns, name string) uint64 {
	l.t.Helper()
	out := l.In(ns, "nft", "-j", "list", "counter", "inet", "firewall", name)
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		l.t.Fatalf("parsing counter %s: %v", name, err)
	}
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			return o.Counter.Packets
		}
	}
	l.t.Fatalf("counter %s not found", name)
	return 0
}
