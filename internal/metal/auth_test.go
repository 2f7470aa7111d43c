package metal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHMACKeyFromFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "key")
	if err := os.WriteFile(good, []byte("  secret-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := HMACKeyFromFile(good)
	if err != nil || key != "secret-key" {
		t.Fatalf("HMACKeyFromFile = %q, %v", key, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := HMACKeyFromFile(empty); err == nil {
		t.Fatal("empty key file accepted")
	}
	if _, err := HMACKeyFromFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing key file accepted")
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	cfg := Config{URL: "http://x", HMACKey: "super-secret-hmac", BearerToken: "super-secret-token"}
	for _, s := range []string{cfg.String(), cfg.GoString()} {
		if strings.Contains(s, "super-secret") {
			t.Fatalf("config string leaks a secret: %s", s)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "not a url"},
		{URL: "ftp://host"},
		{URL: "http://"},
		{URL: "http://host", HMACKey: "k", HMACAuthType: "Metal-Root"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%v) accepted an invalid config", cfg)
		}
	}
}
