package netns

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// driftConfig opens TCP 443 from the cluster to the outside; 80 stays closed.
func driftConfig(state string) string {
	return `
name: fw-test
controllers:
  firewall: {source: static}
  cwnp: {source: static}
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
host: {ssh: {authorizedKeysFile: "-"}, egressStateFile: ` + state + `}
`
}

// driftMetrics reads the agent's drift metrics from the cluster side.
type driftMetrics struct{ drifts, repairs, drifted, lastCheck float64 }

func readDriftMetrics(s *single) (driftMetrics, error) {
	text, err := httpGet(s.node, "10.1.0.1:9630", "/metrics")
	if err != nil {
		return driftMetrics{}, err
	}
	var m driftMetrics
	for name, v := range map[string]*float64{
		"palisade_agent_ruleset_drift_total": &m.drifts, "palisade_agent_ruleset_drift_repairs_total": &m.repairs,
		"palisade_agent_ruleset_drifted": &m.drifted, "palisade_agent_ruleset_drift_last_check_timestamp_seconds": &m.lastCheck,
	} {
		found := false
		for _, line := range strings.Split(text, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == name {
				_, err := fmt.Sscan(f[1], v)
				found = err == nil
			}
		}
		if !found {
			return m, fmt.Errorf("no %s in /metrics", name)
		}
	}
	return m, nil
}

func passes(ns, dst string) func() error {
	return func() error { return Connect(ns, "", "tcp", dst) }
}

func dropped(ns, dst string) func() error {
	return func() error {
		if Connect(ns, "", "tcp", dst) == nil {
			return fmt.Errorf("%s still passes", dst)
		}
		return nil
	}
}

// The running agent finds hand edits of its table with nft (a flushed chain that blocks
// everything, a rule inserted that opens a port, the deleted table that opens everything),
// counts them in its metrics and repairs them: the packets follow the policies again, and
// the policy's counter keeps counting. With nftables.repairDrift: false it only reports.
func TestDriftRepairedAndEnforcedAgain(t *testing.T) {
	s := newSingle(t)
	s.agent.Nftables = "  defaultEgress: false\n  driftCheckInterval: 2s\n"
	s.agent.startAgent(driftConfig(filepath.Join(s.agent.Dir, "egress.json")))
	https, http := outside4+":443", outside4+":80"
	eventually(t, "first apply and check", func() error {
		m, err := readDriftMetrics(s)
		if err == nil && (m.lastCheck == 0 || m.drifted != 0) {
			err = fmt.Errorf("metrics %+v", m)
		}
		return err
	})
	s.Expect(pass(s.node, "tcp", https), drop(s.node, "tcp", http))
	policyCounter := func() uint64 {
		var n uint64
		for name, v := range nftCounters(t, s.Lab, s.fw) {
			if strings.HasPrefix(name, "cwnp-") {
				n += v[0]
			}
		}
		return n
	}
	counted := policyCounter()
	if counted == 0 {
		t.Fatal("the policy's counter did not count")
	}

	// What each edit does to packets (443 blocked; 80 opened) is shown by TestDriftReportOnly
	// for the flush; here the repair may come before any probe, so the end state is asserted.
	edits := []struct {
		name string
		nft  []string
	}{
		{"flush chain", []string{"flush", "chain", "inet", "firewall", "forward"}},
		{"insert rule", []string{"insert", "rule", "inet", "firewall", "forward", "tcp", "dport", "80", "accept"}},
		{"delete table", []string{"delete", "table", "inet", "firewall"}},
	}
	before, _ := readDriftMetrics(s)
	for i, e := range edits {
		s.In(s.fw, append([]string{"nft"}, e.nft...)...)
		eventually(t, e.name+": repaired, 443 passes and 80 is dropped again", func() error {
			if err := passes(s.node, https)(); err != nil {
				return err
			}
			return dropped(s.node, http)()
		})
		eventually(t, e.name+": counted", func() error {
			m, err := readDriftMetrics(s)
			if err == nil && (m.drifts < before.drifts+float64(i+1) || m.repairs < before.repairs+float64(i+1) || m.drifted != 0) {
				err = fmt.Errorf("metrics %+v", m)
			}
			return err
		})
		if e.name != "delete table" {
			if now := policyCounter(); now <= counted {
				t.Errorf("%s: the policy counter went from %d to %d: reset by the repair", e.name, counted, now)
			} else {
				counted = now
			}
		}
	}
}

// nftables.repairDrift: false: the drift is found and counted once, and stays.
func TestDriftReportOnly(t *testing.T) {
	s := newSingle(t)
	s.agent.Nftables = "  defaultEgress: false\n  driftCheckInterval: 1s\n  repairDrift: false\n"
	s.agent.startAgent(driftConfig(filepath.Join(s.agent.Dir, "egress.json")))
	https := outside4 + ":443"
	eventually(t, "first apply and check", func() error {
		m, err := readDriftMetrics(s)
		if err == nil && (m.lastCheck == 0 || m.drifted != 0) {
			err = fmt.Errorf("metrics %+v", m)
		}
		return err
	})
	s.Expect(pass(s.node, "tcp", https))
	s.In(s.fw, "nft", "flush", "chain", "inet", "firewall", "forward")
	var found driftMetrics
	eventually(t, "drift found", func() error {
		m, err := readDriftMetrics(s)
		if err == nil && (m.drifted != 1 || m.drifts != 1) {
			err = fmt.Errorf("metrics %+v", m)
		}
		found = m
		return err
	})
	// Three more scheduled checks: still drifted, counted once, never repaired.
	eventually(t, "later checks", func() error {
		m, err := readDriftMetrics(s)
		if err == nil && m.lastCheck < found.lastCheck+3 {
			err = fmt.Errorf("last check %v, found at %v", m.lastCheck, found.lastCheck)
		}
		if err == nil && (m.drifted != 1 || m.drifts != 1 || m.repairs != 0) {
			t.Fatalf("report only: metrics %+v", m)
		}
		return err
	})
	if out := s.In(s.fw, "nft", "list", "chain", "inet", "firewall", "forward"); strings.Contains(out, "accept") {
		t.Errorf("the flushed chain was refilled:\n%s", out)
	}
	s.Expect(drop(s.node, "tcp", https))
}
