package netns

import (
	"strings"
	"testing"
)

// Two clusters expose their API servers through LoadBalancer services behind one firewall,
// each with its own allow-list (loadBalancerSourceRanges). Changing one cluster's list
// changes what reaches that cluster and nothing else, and counters survive the update.
func TestPerClusterAllowList(t *testing.T) {
	s := newSingle(t)
	config := func(rangesA string) string {
		return staticFirewall + `
    services:
    - name: apiserver
      namespace: cluster-a
      ips: [10.2.0.1]
      ports: [{protocol: TCP, port: 6443}]
      sourceRanges: [` + rangesA + `]
    - name: apiserver
      namespace: cluster-b
      ips: [10.2.0.2]
      ports: [{protocol: TCP, port: 6443}]
      sourceRanges: [10.99.0.3/32]
`
	}
	s.agent.MustApply(config("10.99.0.2/32"))
	s.Expect(
		passFrom(s.outside, outside4, "tcp", "10.2.0.1:6443"),
		dropFrom(s.outside, outside4b, "tcp", "10.2.0.1:6443"),
		dropFrom(s.outside, outside4, "tcp", "10.2.0.2:6443"),
		passFrom(s.outside, outside4b, "tcp", "10.2.0.2:6443"),
	)
	counterB := serviceCounter(t, s, "cluster-b/apiserver")
	before := s.Counter(s.fw, counterB)
	if before == 0 {
		t.Fatalf("counter %s counted nothing", counterB)
	}

	s.agent.MustApply(config("10.99.0.3/32"))
	s.Expect(
		dropFrom(s.outside, outside4, "tcp", "10.2.0.1:6443"),
		passFrom(s.outside, outside4b, "tcp", "10.2.0.1:6443"),
		dropFrom(s.outside, outside4, "tcp", "10.2.0.2:6443"),
		passFrom(s.outside, outside4b, "tcp", "10.2.0.2:6443"),
	)
	if after := s.Counter(s.fw, counterB); after <= before {
		t.Errorf("counter %s went from %d to %d: it was reset by the update", counterB, before, after)
	}
}

// serviceCounter finds the counter name of a service in the agent's table.
func serviceCounter(t *testing.T, s *single, suffix string) string {
	t.Helper()
	out := s.In(s.fw, "nft", "list", "counters", "table", "inet", "firewall")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "counter" && strings.HasPrefix(f[1], "svc-") && strings.HasSuffix(f[1], suffix) {
			return f[1]
		}
	}
	t.Fatalf("no counter for %s in:\n%s", suffix, out)
	return ""
}
