package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The three examples of MEP-16, verbatim apart from indentation.
var seedExamples = map[string]string{
	"gardener": `
name: shoot--abc--cluster-firewall-def
sources:
  seed:
    kubeconfig: /etc/firewall-controller/seed.yaml
    namespace: shoot--abc--cluster
  shoot:
    kubeconfig: /etc/firewall-controller/shoot.yaml
    namespace: firewall
controllers:
  firewall:
    source: seed
    selfUpdate:
      enabled: true
    droptailer:
      enabled: true
  service:
    source: shoot
  cwnp:
    source: shoot
  monitor:
    source: shoot
`,
	"metal": `
name: best-firewall-ever
sources:
  metal:
    url: https://metal-api
    hmac: some-hmac
    type: Metal-View
    projectID: abc
controllers:
  firewall:
    source: metal
    selfUpdate:
      enabled: true
    droptailer:
      enabled: true
  cwnp:
    source: metal
`,
	"static": `
name: most-restricted-firewall-ever
sources:
  static:
    firewall:
      controllerURL: https://example.invalid/agent
    cwnp:
      egress: []
      ingress: []
controllers:
  firewall:
    source: static
  cwnp:
    source: static
`,
}

func TestParseSeedExamples(t *testing.T) {
	for name, doc := range seedExamples {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Controllers.Firewall == nil || cfg.Nftables.Table != "firewall" || cfg.Nftables.RuleFile != "/etc/nftables/firewall-controller.v4" {
				t.Fatalf("defaults not applied: %+v", cfg)
			}
		})
	}
}

func TestParseStaticFull(t *testing.T) {
	cfg, err := Parse([]byte(`
name: fw
nftables:
  table: fw_test
  ruleFile: /tmp/x/rules.v4
sources:
  static:
    firewall:
      internalPrefixes: [10.0.0.0/8]
      clusterPrefixes: [10.1.0.0/16, "fd00:1::/64"]
      rateLimits: [{networkID: internet, rate: 100}]
      egressRules: [{networkID: internet, ips: [185.1.2.3]}]
      allowedNetworks: {ingress: [0.0.0.0/0], egress: [0.0.0.0/0]}
      firewallNetworks: [{networkID: internet, networkType: external, vrf: 104009, prefixes: [185.1.2.0/24]}]
    cwnp:
      egress:
      - to: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]
        ports: [{protocol: TCP, port: 443}, {protocol: UDP, port: 53}]
      ingress:
      - from: [{cidr: 192.168.0.0/16}]
        ports: [{port: 8000, endPort: 8100}]
    services:
    - name: web
      namespace: default
      ips: [185.1.2.10]
      ports: [{protocol: TCP, port: 443, nodePort: 30443}]
      sourceRanges: [1.1.1.0/24]
controllers:
  firewall: {source: static}
  cwnp: {source: static}
  service: {source: static}
`))
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Sources.Static
	if got := st.Firewall.ClusterPrefixes; len(got) != 2 {
		t.Errorf("clusterPrefixes = %v", got)
	}
	if got := *st.CWNP.Ingress[0].Ports[0].EndPort; got != 8100 {
		t.Errorf("endPort = %d", got)
	}
	if got := st.Services[0].Ports[0].NodePort; got != 30443 {
		t.Errorf("nodePort = %d", got)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	base := `
sources:
  static: {}
  shoot: {kubeconfig: /k}
controllers:
  firewall: {source: static}
`
	cases := []struct{ doc, want string }{
		{base + "  cwnp: {source: shot}\n", `controllers.cwnp.source: "shot" is not one of shoot, metal, static`},
		{base + "  cwnp: {source: metal}\n", `controllers.cwnp.source: "metal" is not configured under sources.metal`},
		{base + "  monitor: {source: static}\n", `controllers.monitor.source: "static" is not one of shoot`},
		{base + "  service: {}\n", `controllers.service.source: required`},
		{"sources: {static: {}}\ncontrollers: {}\n", `controllers.firewall: required`},
		{"sources: {seed: {kubeconfig: /k}}\ncontrollers: {firewall: {source: seed}}\n", `sources.seed.namespace: required`},
		{base + "nftables: {table: 'a b'}\n", `nftables.table:`},
		{base + "nftables: {ruleFile: rel/path}\n", `nftables.ruleFile:`},
		{base + "bogus: 1\n", `unknown field "bogus"`},
		{base + "reporting: {interval: 10}\n", `reporting.interval: "10" must be a duration`},
		{base + "distance: {frrFile: frr.conf}\n", `distance.frrFile:`},
		{base + "distance: {routeMap: 'a b'}\n", `distance.routeMap:`},
		{base + "distance: {asn: -1}\n", `distance.asn:`},
		{"sources: {metal: {url: https://m, type: Metal-Edit}}\ncontrollers: {firewall: {source: metal}}\n", `sources.metal.hmac: required`},
		{"sources: {metal: {url: https://m, hmac: k}}\ncontrollers: {firewall: {source: metal}}\n", `sources.metal.projectID: required unless machineID`},
		{"sources: {metal: {url: https://m, hmac: k, machineID: m, type: view}}\ncontrollers: {firewall: {source: metal}}\n", `sources.metal.type: "view" is not one of`},
		{"sources: {metal: {url: https://m, hmac: k, machineID: m, interval: 1ms}}\ncontrollers: {firewall: {source: metal}}\n", `sources.metal.interval:`},
		{"sources:\n  static:\n    cwnp:\n      egres: []\ncontrollers: {firewall: {source: static}}\n", `unknown field "egres"`},
	}
	for _, c := range cases {
		_, err := Parse([]byte("name: x\n" + c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) error = %v, want it to contain %q", c.doc, err, c.want)
		}
	}
}

func TestDefaultsOfPalisadeKeys(t *testing.T) {
	cfg, err := Parse([]byte(seedExamples["metal"]))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Sources.Metal
	if m.Hostname != "best-firewall-ever" || Duration(m.Interval) != DefaultMetalInterval || cfg.Distance.FRRFile != DefaultFRRFile ||
		cfg.Distance.RouteMap != DefaultRouteMap || Duration(cfg.Reporting.Interval) != DefaultReportInterval {
		t.Errorf("defaults: metal %+v reporting %+v distance %+v", m, cfg.Reporting, cfg.Distance)
	}
}

// The shoot's status writes run at 50 QPS (burst 100) unless configured; negative rates are
// refused with their key.
func TestShootStatusRate(t *testing.T) {
	base := "name: fw\nsources: {static: {}, shoot: {kubeconfig: /k%s}}\ncontrollers: {firewall: {source: static}, cwnp: {source: shoot}}\n"
	cfg, err := Parse([]byte(fmt.Sprintf(base, "")))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Sources.Shoot; s.StatusQPS != DefaultStatusQPS || s.StatusBurst != DefaultStatusBurst {
		t.Errorf("defaults: %+v", s)
	}
	cfg, err = Parse([]byte(fmt.Sprintf(base, ", statusQPS: 20, statusBurst: 40")))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Sources.Shoot; s.StatusQPS != 20 || s.StatusBurst != 40 {
		t.Errorf("configured: %+v", s)
	}
	for _, key := range []string{"statusQPS", "statusBurst"} {
		if _, err := Parse([]byte(fmt.Sprintf(base, ", "+key+": -1"))); err == nil || !strings.Contains(err.Error(), "sources.shoot."+key) {
			t.Errorf("%s: -1: %v", key, err)
		}
	}
}

func TestMissingOptionalControllersAreDisabled(t *testing.T) {
	cfg, err := Parse([]byte("name: x\nsources: {static: {}}\ncontrollers: {firewall: {source: static}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Controllers.CWNP != nil || cfg.Controllers.Service != nil || cfg.Controllers.Monitor != nil {
		t.Fatalf("optional controllers should stay nil: %+v", cfg.Controllers)
	}
}

func TestSecretIsNeverPrinted(t *testing.T) {
	cfg, err := Parse([]byte(seedExamples["metal"]))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(cfg.Sources.Metal), fmt.Sprintf("%+v", cfg.Sources.Metal), fmt.Sprintf("%#v", cfg.Sources.Metal.HMAC)} {
		if strings.Contains(s, "some-hmac") {
			t.Fatalf("secret leaked: %s", s)
		}
	}
	if cfg.Sources.Metal.HMAC != "some-hmac" {
		t.Fatal("secret value lost")
	}
}

// The shipped samples stay valid.
func TestSamples(t *testing.T) {
	files, err := filepath.Glob("../../../config/samples/agent/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Error(err)
		}
	}
}

func TestDNSKeys(t *testing.T) {
	base := "name: fw\nsources: {static: {}}\ncontrollers: {firewall: {source: static}}\n"
	cfg, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.DNS
	if !d.ProxyEnabled() || d.Port != 53 || d.MinTTL != "30s" || d.MaxTTL != "1h0m0s" || d.MaxNames != 10000 || d.MaxAddresses != 50000 ||
		d.StateFile != DefaultDNSStateFile || d.StateInterval != "10s" || d.StatusInterval != "30s" {
		t.Errorf("defaults: %+v", d)
	}
	for yaml, want := range map[string]string{
		"dns: {upstreams: [dns.example]}":      "dns.upstreams[0]",
		"dns: {minTTL: 10m, maxTTL: 1m}":       "dns.maxTTL: 1m is below dns.minTTL 10m",
		"dns: {minTTL: 10ms}":                  "dns.minTTL",
		"dns: {stateFile: state.json}":         "dns.stateFile",
		"dns: {maxNames: -1}":                  "dns.maxNames",
		"dns: {statusInterval: often}":         "dns.statusInterval",
		"dns: {upstreams: [\"[fd00::53]:0\"]}": "dns.upstreams[0]",
	} {
		if _, err := Parse([]byte(base + yaml)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", yaml, err, want)
		}
	}
	for s, want := range map[string]string{"10.0.0.53": "10.0.0.53:53", "10.0.0.53:5353": "10.0.0.53:5353", "fd00::53": "[fd00::53]:53", "[fd00::53]:5353": "[fd00::53]:5353"} {
		if got, err := ParseUpstream(s); err != nil || got.String() != want {
			t.Errorf("%s: %s %v", s, got, err)
		}
	}
}

// The seed's default egress is on unless nftables.defaultEgress is false.
func TestDefaultEgressKey(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want bool
	}{
		{"", true},
		{"nftables: {defaultEgress: true}\n", true},
		{"nftables: {defaultEgress: false}\n", false},
	} {
		cfg, err := Parse([]byte("name: fw\ncontrollers:\n  firewall: {source: static}\nsources:\n  static: {}\n" + c.yaml))
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		if got := cfg.Nftables.DefaultEgressEnabled(); got != c.want {
			t.Errorf("%q: default egress %v, want %v", c.yaml, got, c.want)
		}
	}
	if _, err := Parse([]byte("name: fw\ncontrollers:\n  firewall: {source: static}\nsources:\n  static: {}\nnftables: {defaultEgress: nope}\n")); err == nil {
		t.Error("a non-boolean defaultEgress was accepted")
	}
}
