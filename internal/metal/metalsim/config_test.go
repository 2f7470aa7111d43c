package metalsim_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

const sampleConfig = "../../../config/samples/metal-sim.yaml"

func TestSampleConfigLoads(t *testing.T) {
	cfg, err := metalsim.LoadConfig(sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Provisioning.Installing.Duration != 2*time.Second || cfg.Machines[0].Count != 10 || len(cfg.HMACKeys) != 3 {
		t.Errorf("sample config parsed as %+v", cfg)
	}
	sim := metalsim.New(cfg)
	if n := len(sim.Machines()); n != 10 {
		t.Errorf("pool = %d machines, want 10", n)
	}
	if err := metalsim.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
}

func TestInvalidConfigsAreRejected(t *testing.T) {
	tests := map[string]string{
		"unknown field":  "partitons: []\n",
		"bad duration":   "provisioning:\n  installing: soon\n",
		"bad prefix":     "networks:\n  - id: n\n    prefixes: [10.0.0.0/33]\n",
		"unknown pool":   "machines:\n  - partition: nope\n    size: nope\n    count: 1\n",
		"bad auth type":  "hmacKeys:\n  Metal-Root: x\n",
		"bad base path":  "basePath: metal\n",
		"bad image id":   "images:\n  - id: noversion\n",
		"unknown parent": "networks:\n  - id: n\n    prefixes: [10.0.0.0/24]\n    parentNetworkID: ghost\n",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := metalsim.LoadConfig(path); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "invalid config") {
			t.Fatalf("New with invalid config: recover = %v", r)
		}
	}()
	metalsim.New(metalsim.Config{BasePath: "x"})
}
