package metal

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Vectors from integration-and-metal-api.md section C2.
func TestHMACSignatureMatchesUpstreamVectors(t *testing.T) {
	tests := []struct {
		name               string
		key                []byte
		date, method, salt string
		want               string
	}{
		{
			name: "upstream mac_test.go", key: []byte{1, 2, 3},
			date: "2019-01-16T14:44:45Z", method: "GET", salt: string([]byte{1, 2, 3, 4, 5, 6}),
			want: "f8d293a06bdde899a5bd1dd61b13842564650c717c742db02c4e1a888fc22501",
		},
		{
			name: "reference second vector", key: []byte("must-be-changed"),
			date: "2024-01-02T03:04:05Z", method: "POST", salt: "abcdefghijklmnopqrstuvwx",
			want: "cd91bc752e9a06ff105e5e828f5158713de425cfd579fc2a1bbfe7de6aa96fe9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HMACSignature(tt.key, tt.date, tt.method, tt.salt); got != tt.want {
				t.Fatalf("HMACSignature = %s, want %s", got, tt.want)
			}
			if got := HMACSignature(tt.key, tt.date, strings.ToLower(tt.method), tt.salt); got != tt.want {
				t.Fatalf("method must be upper-cased before signing, got %s", got)
			}
			if !ValidHMAC(tt.key, tt.date, tt.method, tt.salt, tt.want) {
				t.Fatal("ValidHMAC rejected the vector")
			}
			if ValidHMAC(tt.key, tt.date, tt.method, tt.salt+"x", tt.want) {
				t.Fatal("ValidHMAC accepted a different salt")
			}
		})
	}
}

func TestHMACHeadersShape(t *testing.T) {
	now := time.Date(2024, 1, 2, 3, 4, 5, 999, time.FixedZone("X", 3600))
	h, err := hmacHeaders([]byte("k"), AuthTypeEdit, http.MethodPost, now)
	if err != nil {
		t.Fatal(err)
	}
	if h[HeaderDate] != "2024-01-02T02:04:05Z" {
		t.Errorf("X-Date = %q, want UTC second precision", h[HeaderDate])
	}
	if !regexp.MustCompile(`^[a-zA-Z]{24}$`).MatchString(h[HeaderSalt]) {
		t.Errorf("salt %q is not 24 ASCII letters", h[HeaderSalt])
	}
	want := "Metal-Edit " + HMACSignature([]byte("k"), h[HeaderDate], "POST", h[HeaderSalt])
	if h[HeaderAuthorization] != want {
		t.Errorf("Authorization = %q, want %q", h[HeaderAuthorization], want)
	}
}

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
