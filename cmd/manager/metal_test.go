package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

func TestMetalConfigFromFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, key string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	adminFile, viewFile := write("admin", "admin-key"), write("view", "view-key")

	// The flags users have today keep their meaning.
	cfg, err := metalConfig("http://m", metalKeys{authType: metal.AuthTypeAdmin}, env(map[string]string{"METAL_API_HMAC": "env-key"}))
	if err != nil || cfg.HMACKey != "env-key" || cfg.HMACAuthType != metal.AuthTypeAdmin || cfg.View != nil || cfg.Edit != nil || cfg.Admin != nil {
		t.Fatalf("env key: %+v %v", cfg, err)
	}
	cfg, err = metalConfig("http://m", metalKeys{file: adminFile, authType: metal.AuthTypeAdmin}, env(map[string]string{"METAL_API_HMAC": "env-key"}))
	if err != nil || cfg.HMACKey != "admin-key" {
		t.Fatalf("file wins over env: %+v %v", cfg, err)
	}

	// Per-purpose keys from files or the environment.
	cfg, err = metalConfig("http://m", metalKeys{file: adminFile, authType: metal.AuthTypeAdmin, view: viewFile},
		env(map[string]string{"METAL_API_EDIT_HMAC": "edit-key"}))
	if err != nil || cfg.View == nil || cfg.View.HMACKey != "view-key" || cfg.Edit == nil || cfg.Edit.HMACKey != "edit-key" || cfg.Admin != nil {
		t.Fatalf("per-purpose keys: %+v %v", cfg, err)
	}
	if _, err := metalConfig("http://m", metalKeys{view: write("empty", "")}, env(nil)); err == nil {
		t.Fatal("an empty view key file was accepted")
	}

	// The same flags against the simulator: reads sign as Metal-View.
	sim := metalsim.New(metalsim.DefaultConfig())
	url, stop, err := sim.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	keys := metalsim.DefaultConfig().HMACKeys
	cfg, err = metalConfig(url, metalKeys{file: write("a", keys[metal.AuthTypeAdmin]), authType: metal.AuthTypeAdmin, view: write("v", keys[metal.AuthTypeView])}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c, err := metal.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindFirewalls(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateMachine(context.Background(), &metal.MachineUpdateRequest{ID: "nope"}); !metal.IsNotFound(err) {
		t.Fatalf("update of an unknown machine: %v", err)
	}
	recs := sim.Requests()
	if len(recs) != 2 || recs[0].AuthType != metal.AuthTypeView || recs[1].AuthType != metal.AuthTypeAdmin {
		t.Fatalf("requests = %+v, want find as Metal-View and update as Metal-Admin", recs)
	}
}
