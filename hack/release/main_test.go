package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/palisade-fw/palisade/internal/signing"
)

// The release key comes from a file, else from PALISADE_SIGNING_KEY, else it is ephemeral.
func TestSigningKey(t *testing.T) {
	_, priv, _ := signing.GenerateKey()
	pemKey, _ := signing.MarshalPrivateKey(priv)
	file := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(file, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Setenv("PALISADE_SIGNING_KEY", "")
	if k, ephemeral, err := signingKey(file); err != nil || ephemeral || !k.Equal(priv) {
		t.Errorf("from file: ephemeral %v, err %v", ephemeral, err)
	}
	k1, ephemeral, err := signingKey("")
	if err != nil || !ephemeral {
		t.Errorf("without key: ephemeral %v, err %v", ephemeral, err)
	}
	k2, _, _ := signingKey("")
	if k1.Equal(k2) {
		t.Error("two ephemeral keys are equal")
	}
	t.Setenv("PALISADE_SIGNING_KEY", string(pemKey))
	if k, ephemeral, err := signingKey(""); err != nil || ephemeral || !k.Equal(priv) {
		t.Errorf("from env: ephemeral %v, err %v", ephemeral, err)
	}
	t.Setenv("PALISADE_SIGNING_KEY", "not a key")
	if _, _, err := signingKey(""); err == nil {
		t.Error("a malformed key was accepted")
	}
	if _, _, err := signingKey(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing key file was accepted")
	}
}
