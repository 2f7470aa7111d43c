package netns

import (
	"os"
	"strings"
	"testing"
)

// Before the agent runs the namespaces forward everything; after it, only what is allowed.
// An except outside its block (accepted by the CRD, as upstream) is ignored; the rest of
// the policy applies.
func TestEgressAllowsOnlyWhatPoliciesAllow(t *testing.T) {
	s := newSingle(t)
	s.Expect(pass(s.node, "tcp", outside4+":8080")) // sanity: no firewall yet

	s.agent.MustApply(staticFirewall + `
    cwnp:
      egress:
      - to: [{cidr: 10.99.0.0/24, except: [10.99.0.3/32, 192.168.0.0/16]}, {cidr: "fd99::/64", except: ["fd99::3/128", "2001:db8::/32"]}]
        ports: [{protocol: TCP, port: 443}, {protocol: UDP, port: 53}]
`)
	s.Expect(
		pass(s.node, "tcp", outside4+":443"),
		pass(s.node, "udp", outside4+":53"),
		drop(s.node, "tcp", outside4+":8080"),
		drop(s.node, "udp", outside4+":5353"),
		drop(s.node, "tcp", outside4b+":443"), // except
		pass(s.node, "tcp", "["+outside6+"]:443"),
		pass(s.node, "udp", "["+outside6+"]:53"),
		drop(s.node, "tcp", "["+outside6+"]:8080"),
		drop(s.node, "tcp", "["+outside6b+"]:443"),
		// nothing opens the cluster from outside
		drop(s.outside, "tcp", node4+":443"),
		drop(s.outside, "tcp", "["+node6+"]:443"),
	)

	// The rule file holds what was applied.
	data, err := os.ReadFile(s.agent.RuleFile())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "add table inet firewall") {
		t.Errorf("rule file does not hold the table:\n%s", data)
	}
}

// An ingress rule opens traffic towards the cluster only, never the same port outwards.
func TestIngressIsDirectional(t *testing.T) {
	s := newSingle(t)
	s.agent.MustApply(staticFirewall + `
    cwnp:
      ingress:
      - from: [{cidr: 10.99.0.0/24}, {cidr: "fd99::/64"}]
        ports: [{protocol: TCP, port: 22}]
`)
	s.Expect(
		pass(s.outside, "tcp", node4+":22"),
		pass(s.outside, "tcp", "["+node6+"]:22"),
		drop(s.outside, "tcp", node4+":443"),
		// the same port in the other direction stays closed (upstream opened it)
		drop(s.node, "tcp", outside4+":22"),
		drop(s.node, "tcp", "["+outside6+"]:22"),
	)
}

func TestLoadBalancerAndNodePort(t *testing.T) {
	s := newSingle(t)
	s.agent.MustApply(staticFirewall + `
    services:
    - name: web
      namespace: shop
      ips: [10.2.0.10, "fd02::10"]
      ports: [{protocol: TCP, port: 443, nodePort: 30443}]
      sourceRanges: [10.99.0.2/32, "fd99::2/128"]
    - name: pending
      namespace: shop
      ports: [{protocol: TCP, port: 8443}]
    - name: np
      namespace: shop
      type: NodePort
      ports: [{protocol: TCP, port: 80, nodePort: 30080}]
`)
	s.Expect(
		passFrom(s.outside, outside4, "tcp", "10.2.0.10:443"),
		dropFrom(s.outside, outside4b, "tcp", "10.2.0.10:443"), // not in sourceRanges
		drop(s.outside, "tcp", "10.2.0.10:8080"),               // port not exposed
		passFrom(s.outside, outside6, "tcp", "[fd02::10]:443"),
		dropFrom(s.outside, outside6b, "tcp", "[fd02::10]:443"),
		// a service without IP opens nothing, anywhere
		drop(s.outside, "tcp", "10.2.0.10:8443"),
		drop(s.outside, "tcp", node4+":8443"),
		// NodePort: the node port is open, the service port is not
		pass(s.outside, "tcp", node4+":30080"),
		pass(s.outside, "tcp", "["+node6+"]:30080"),
		drop(s.outside, "tcp", node4+":80"),
		// the LoadBalancer's own node port is not opened
		drop(s.outside, "tcp", node4+":30443"),
	)
}

// An invalid object is refused, the others still apply.
func TestOneBadObjectDoesNotBlockOthers(t *testing.T) {
	s := newSingle(t)
	out, err := s.agent.Once(staticFirewall + `
    cwnp:
      egress:
      - to: [{cidr: 10.99.0.0/24}]
        ports: [{protocol: TCP, port: 443}]
    services:
    - name: bad
      namespace: x
      ips: [10.2.0.10]
      ports: [{protocol: TCP, port: 8080}]
      sourceRanges: [not-a-cidr]
    - name: good
      namespace: x
      ips: [10.2.0.10]
      ports: [{protocol: TCP, port: 6443}]
`)
	if err != nil {
		t.Fatalf("agent: %v\n%s", err, out)
	}
	if !strings.Contains(out, "object refused") || !strings.Contains(out, "x/bad") {
		t.Errorf("refusal not reported:\n%s", out)
	}
	s.Expect(
		pass(s.node, "tcp", outside4+":443"),
		pass(s.outside, "tcp", "10.2.0.10:6443"),
		drop(s.outside, "tcp", "10.2.0.10:8080"),
	)
}
