package plugin

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/verdict"
)

func TestCurrentFirewall(t *testing.T) {
	old, cur := set(1, "old", 1, 1), set(2, "new", 2, 1)
	cases := map[string]struct {
		s    Snapshot
		want string
	}{
		"ready one of the newest set": {Snapshot{Sets: []v2.FirewallSet{old, cur}, Firewalls: []v2.Firewall{
			firewall("a-old", old, true), firewall("b-new", cur, false), firewall("c-new", cur, true)}}, "c-new"},
		"none ready: first by name": {Snapshot{Sets: []v2.FirewallSet{cur}, Firewalls: []v2.Firewall{
			firewall("z-new", cur, false), firewall("b-new", cur, false)}}, "b-new"},
		"newest set without firewalls": {Snapshot{Sets: []v2.FirewallSet{old, cur}, Firewalls: []v2.Firewall{firewall("a-old", old, true)}}, ""},
		"no sets":                      {Snapshot{}, ""},
	}
	for name, c := range cases {
		got := ""
		if fw := CurrentFirewall(c.s); fw != nil {
			got = fw.Name
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: shoot
  cluster: {server: "https://internal:443", insecure-skip-tls-verify: true}
users:
- name: generic
  user: {tokenFile: /var/run/secrets/gardener.cloud/shoot/generic-kubeconfig/token}
contexts:
- name: shoot
  context: {cluster: shoot, user: generic}
current-context: shoot
`

// Gardener's generic kubeconfig points at a token file on the firewall; the token Secret and
// the published API server URL replace it.
func TestWorkloadConfig(t *testing.T) {
	cfg, err := WorkloadConfig([]byte(kubeconfig), "tok3n", "https://api.shoot.example:443")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://api.shoot.example:443" || cfg.BearerToken != "tok3n" || cfg.BearerTokenFile != "" {
		t.Fatalf("host %q token %q file %q", cfg.Host, cfg.BearerToken, cfg.BearerTokenFile)
	}
	inline := strings.Replace(kubeconfig, "tokenFile: /var/run/secrets/gardener.cloud/shoot/generic-kubeconfig/token", "token: inline", 1)
	cfg, err = WorkloadConfig([]byte(inline), "", "")
	if err != nil || cfg.Host != "https://internal:443" || cfg.BearerToken != "inline" {
		t.Fatalf("kept kubeconfig: %v %+v", err, cfg)
	}
	if _, err := WorkloadConfig([]byte("token: secret-value\n{"), "", ""); err == nil || strings.Contains(err.Error(), "secret-value") {
		t.Fatalf("a broken kubeconfig: %v", err)
	}
}

func TestLearnedAddresses(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	later, earlier := metav1.NewTime(now.Add(time.Minute)), metav1.NewTime(now.Add(-time.Minute))
	got := LearnedAddresses(map[string][]v1.IPSet{
		"*.github.com": {
			{FQDN: "api.github.com.", Version: "ip", IPExpirationTimes: map[string]metav1.Time{"140.82.112.6": later, "140.82.112.7": earlier}},
			{FQDN: "github.com.", Version: "ip6", IPExpirationTimes: map[string]metav1.Time{"2606:50c0::1": later, "not-an-ip": later}},
		},
	}, now)
	want := []netip.Addr{netip.MustParseAddr("140.82.112.6"), netip.MustParseAddr("2606:50c0::1")}
	if len(got) != 1 || len(got["*.github.com"]) != 2 || got["*.github.com"][0] != want[0] || got["*.github.com"][1] != want[1] {
		t.Fatalf("learned %v, want %v", got, want)
	}
}

func TestExplainFlows(t *testing.T) {
	fw := model.ParseFirewall(model.FirewallSpec{ClusterPrefixes: []string{"10.0.0.0/16", "fd00::/64"}})
	services := []corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 443}, {Protocol: corev1.ProtocolUDP, Port: 443}}},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "185.1.2.10"}, {IP: "2001:db8::10"}}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "np"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort,
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "internal"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "pending"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 443}}}},
	}
	cases := []struct {
		name string
		opts explainOptions
		want []string // Flow strings
		err  string
	}{
		{"to", explainOptions{from: "10.0.0.5", to: "140.82.112.3:443/tcp"}, []string{"10.0.0.5 -> 140.82.112.3:443 tcp"}, ""},
		{"to v6, default tcp, any cluster source", explainOptions{to: "[2606:50c0::1]:22"}, []string{"the cluster -> [2606:50c0::1]:22 tcp"}, ""},
		{"udp", explainOptions{from: "10.0.0.5", to: "1.1.1.1:53/UDP"}, []string{"10.0.0.5 -> 1.1.1.1:53 udp"}, ""},
		{"service: every port of the source's family", explainOptions{from: "203.0.113.9", toService: "shop/web"},
			[]string{"203.0.113.9 -> 185.1.2.10:443 tcp", "203.0.113.9 -> 185.1.2.10:443 udp"}, ""},
		{"service: one port", explainOptions{from: "2001:db8:1::9", toService: "shop/web", port: "443/udp"}, []string{"2001:db8:1::9 -> [2001:db8::10]:443 udp"}, ""},
		{"node port", explainOptions{from: "203.0.113.9", toService: "shop/np", node: "10.0.0.10"}, []string{"203.0.113.9 -> 10.0.0.10:30080 tcp"}, ""},
		{"node port without node", explainOptions{from: "203.0.113.9", toService: "shop/np"}, nil, "give --node"},
		{"cluster IP", explainOptions{from: "203.0.113.9", toService: "shop/internal"}, nil, "exposes only LoadBalancer and NodePort"},
		{"pending", explainOptions{from: "203.0.113.9", toService: "shop/pending"}, nil, "no load-balancer IP yet"},
		{"missing", explainOptions{from: "203.0.113.9", toService: "shop/nope"}, nil, "not found"},
		{"bad to", explainOptions{to: "140.82.112.3"}, nil, "ADDR:PORT"},
		{"bad proto", explainOptions{to: "140.82.112.3:1/icmp"}, nil, "not one of TCP, UDP, SCTP"},
		{"families", explainOptions{from: "10.0.0.5", to: "[2606:50c0::1]:443"}, nil, "different address families"},
		{"ingress needs from", explainOptions{to: "10.0.0.5:22", direction: "ingress"}, nil, "needs --from"},
		{"direction contradicts", explainOptions{from: "10.0.0.5", to: "1.1.1.1:443", direction: "ingress"}, nil, "in a cluster prefix, so the firewall treats the flow as egress"},
		{"direction contradicts ingress", explainOptions{from: "1.1.1.1", to: "10.0.0.5:443", direction: "egress"}, nil, "treats the flow as ingress"},
		{"direction agrees", explainOptions{from: "1.1.1.1", to: "10.0.0.5:443", direction: "ingress"}, []string{"1.1.1.1 -> 10.0.0.5:443 tcp"}, ""},
	}
	for _, c := range cases {
		flows, err := c.opts.flows(services, fw)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var got []string
		for _, f := range flows {
			got = append(got, f.String())
		}
		if strings.Join(got, "; ") != strings.Join(c.want, "; ") {
			t.Errorf("%s: flows %q, want %q", c.name, got, c.want)
		}
	}
}

func TestPrintExplanation(t *testing.T) {
	in := verdict.Inputs{Firewall: model.ParseFirewall(model.FirewallSpec{ClusterPrefixes: []string{"10.0.0.0/16"}}), DefaultEgress: true}
	out := Explanation{Firewall: "tenant/edge-1", Deployment: "tenant/edge", Results: []verdict.Result{
		verdict.Explain(in, verdict.Flow{Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr("1.1.1.1"), Protocol: model.TCP, Port: 443}),
		verdict.Explain(in, verdict.Flow{Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr("1.1.1.1"), Protocol: model.TCP, Port: 22}),
	}}
	var b strings.Builder
	if err := printExplanation(&b, out, ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"firewall tenant/edge-1 (current firewall of firewalldeployment.firewall.metal-stack.io edge)",
		"10.0.0.5 -> 1.1.1.1:443 tcp (egress): allowed by default-egress egress[0] (443/tcp, 53/tcp, 53/udp to 0.0.0.0/0, ::/0)",
		"10.0.0.5 -> 1.1.1.1:22 tcp (egress): dropped: no rule matches; nearest: default-egress egress[0] allows",
		"  nearest: default-egress egress[0] allows 443/tcp, 53/tcp, 53/udp to 0.0.0.0/0, ::/0 (misses port: not 22/tcp)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
	for _, format := range []string{"json", "yaml"} {
		b.Reset()
		if err := printExplanation(&b, out, format); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), `"allowed": true`) && !strings.Contains(b.String(), "allowed: true") {
			t.Errorf("%s output lacks the verdict:\n%s", format, b.String())
		}
	}
}
