package netns

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// runAgent starts `agent --config` (not --once) in ns and stops it when the test ends.
func (a *Agent) runAgent(t *testing.T, config string) {
	t.Helper()
	path := filepath.Join(a.Dir, "config.yaml")
	full := config + fmt.Sprintf("\nnftables:\n  ruleFile: %s\n", a.RuleFile()) + a.Nftables
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", a.NS, agentBin, "--config", path)
	logFile, err := os.Create(filepath.Join(a.Dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("agent log:\n%s", b)
		}
	})
}

// buildDroptailer builds cmd/droptailer.
func buildDroptailer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "droptailer")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/palisade-fw/palisade/cmd/droptailer").CombinedOutput(); err != nil {
		t.Fatalf("go build droptailer: %v\n%s", err, out)
	}
	return bin
}

// httpGet fetches path from addr inside ns (the socket is made on a thread in ns).
func httpGet(ns, addr, path string) (string, error) {
	var body string
	err := Do(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr)
		b, err := io.ReadAll(c)
		body = string(b)
		return err
	})
	return body, err
}

// metricValue finds the sample of name whose labels include all of labels.
func metricValue(text, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		return v, err == nil
	}
	return 0, false
}

// nftCounters lists every named counter of the agent's table with `nft list counters`.
func nftCounters(t *testing.T, l *Lab, ns string) map[string][2]uint64 {
	t.Helper()
	out := l.In(ns, "nft", "-j", "list", "counters", "table", "inet", "firewall")
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
				Bytes   uint64 `json:"bytes"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	m := map[string][2]uint64{}
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			m[o.Counter.Name] = [2]uint64{o.Counter.Packets, o.Counter.Bytes}
		}
	}
	return m
}

// lockedLines collects a process's stdout lines.
type lockedLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *lockedLines) add(s string) { l.mu.Lock(); l.lines = append(l.lines, s); l.mu.Unlock() }
func (l *lockedLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// The running agent serves /metrics on :9630 with per-CWNP counters labelled by name whose
// values are the kernel's (`nft list counters`), and a packet the ruleset drops shows up as
// a JSON line on the stdout of the droptailer receiver running on the cluster side, which is
// what `kubectl logs`/`stern -n firewall drop` show.
func TestAgentMetricsAndDroppedPacketLog(t *testing.T) {
	s := newSingle(t)
	receiver := buildDroptailer(t)
	state := filepath.Join(s.agent.Dir, "egress.json")
	s.agent.runAgent(t, `
name: fw-test
controllers:
  firewall: {source: static, droptailer: {enabled: true}}
  cwnp: {source: static}
  service: {source: static}
sources:
  static:
    firewall:
      internalPrefixes: [10.0.0.0/8, "fd00::/8"]
      clusterPrefixes: [10.1.0.0/24, "fd01::/64"]
    cwnp:
      egress:
      - to: [{cidr: 10.99.0.0/24}]
        ports: [{protocol: TCP, port: 443}]
metrics: {address: ":9630"}
host: {ssh: {authorizedKeysFile: "-"}, egressStateFile: `+state+`}
`)
	metricsAddr := "10.1.0.1:9630" // the firewall's address on the cluster side
	var text string
	deadline := time.Now().Add(90 * time.Second)
	for {
		var err error
		text, err = httpGet(s.node, metricsAddr, "/metrics")
		if err == nil && strings.Contains(text, "palisade_nftables_cwnp_packets_total") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no per-CWNP metrics from %s: %v\n%s", metricsAddr, err, text)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The cluster-side receiver follows the agent's stream.
	cmd := exec.Command("ip", "netns", "exec", s.node, receiver, "--source", "http://"+metricsAddr+"/droplog")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := &lockedLines{}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines.add(sc.Text())
		}
	}()

	// Allowed traffic counts on the policy; the dropped one is logged.
	for range 3 {
		s.Expect(pass(s.node, "tcp", outside4+":443"))
	}
	var dropped map[string]any
	deadline = time.Now().Add(90 * time.Second)
	for dropped == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no JSON line for the dropped packet; receiver stderr:\n%s\nlines: %v", stderr.String(), lines.all())
		}
		_ = Connect(s.outside, "", "tcp", node4+":8080") // dropped: outside may not reach the node
		for _, l := range lines.all() {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["DST"] == node4 && m["DPT"] == "8080" {
				dropped = m
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for k, v := range map[string]string{"ACTION": "Drop", "SRC": outside4, "PROTO": "TCP", "IN": "vlan99", "OUT": "eth1", "firewall": "fw-test"} {
		if dropped[k] != v {
			t.Errorf("%s = %v, want %q in %v", k, dropped[k], v, dropped)
		}
	}

	// Counters by name match the kernel's once the traffic has stopped.
	name := ruleset.PolicyCounter(model.ObjectKey{Source: "static", Name: "static"})
	kernel := nftCounters(t, s.Lab, s.fw)[name]
	if kernel[0] == 0 {
		t.Fatalf("policy counter %s counted nothing", name)
	}
	text, err = httpGet(s.node, metricsAddr, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	byName := []string{`name="static"`, `source="static"`}
	if v, ok := metricValue(text, "palisade_nftables_cwnp_packets_total", byName...); !ok || uint64(v) != kernel[0] {
		t.Errorf("cwnp packets metric %v (found %v), nft says %d", v, ok, kernel[0])
	}
	if v, ok := metricValue(text, "palisade_nftables_cwnp_bytes_total", byName...); !ok || uint64(v) != kernel[1] {
		t.Errorf("cwnp bytes metric %v (found %v), nft says %d", v, ok, kernel[1])
	}
	if strings.Contains(text, name) {
		t.Errorf("the hashed counter name %s leaked into the metrics", name)
	}
	drops := nftCounters(t, s.Lab, s.fw)[ruleset.CounterDropped]
	text, _ = httpGet(s.node, metricsAddr, "/metrics")
	if v, ok := metricValue(text, "palisade_nftables_rule_packets_total", `rule="drop_total"`, `action="drop"`); !ok || uint64(v) < drops[0] {
		t.Errorf("drop_total metric %v (found %v), nft says at least %d", v, ok, drops[0])
	}
	for _, m := range []string{"palisade_nftables_last_apply_success_timestamp_seconds", "palisade_nftables_apply_duration_seconds_count",
		`palisade_nftables_set_elements{set="cwnp_egress_v4"} 1`, `palisade_nftables_device_bytes_total{device="external",direction="out"}`,
		"palisade_droplog_lines_total", `palisade_droplog_lines_lost_total{reason="ratelimit"}`} {
		if !strings.Contains(text, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}
