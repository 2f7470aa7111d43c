package selfupdate

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/signing"
)

// script is a stand-in agent binary: it answers --version like the agent does.
func script(version string) []byte {
	return []byte("#!/bin/sh\necho " + version + "\n")
}

// release serves artifacts the way the release pipeline lays them out: the binary, its
// .sha256 and its .sig beside it.
type release struct {
	files map[string][]byte
}

func (r *release) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, ok := r.files[req.URL.Path]
	if !ok {
		http.NotFound(w, req)
		return
	}
	_, _ = w.Write(b)
}

func (r *release) publish(priv ed25519.PrivateKey, name string, data []byte, signed bool) {
	r.files["/"+name] = data
	r.files["/"+name+signing.ChecksumSuffix] = []byte(signing.ChecksumLine(data, name))
	if signed {
		r.files["/"+name+signing.SignatureSuffix] = signing.Sign(priv, data)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func setup(t *testing.T) (*Updater, *release, *httptest.Server, ed25519.PrivateKey, *int, *clock) {
	t.Helper()
	pub, priv, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "firewall-controller")
	if err := os.WriteFile(bin, script("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	rel := &release{files: map[string][]byte{}}
	srv := httptest.NewServer(rel)
	t.Cleanup(srv.Close)
	restarts := 0
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	u := &Updater{Binary: bin, PublicKey: pub, Running: "v1", HealthTimeout: 2 * time.Minute, Now: c.now,
		Restart: func(context.Context) error { restarts++; return nil }}
	return u, rel, srv, priv, &restarts, c
}

// restarted is the agent process after a restart into version.
func restarted(u *Updater, version string) *Updater {
	return &Updater{Binary: u.Binary, PublicKey: u.PublicKey, Running: version, HealthTimeout: u.HealthTimeout,
		Now: u.Now, Restart: u.Restart}
}

func installed(t *testing.T, u *Updater) string {
	t.Helper()
	b, err := os.ReadFile(u.Binary)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRefusesUnsignedTamperedAndMismatched(t *testing.T) {
	u, rel, srv, priv, restarts, _ := setup(t)
	_, otherKey, _ := signing.GenerateKey()
	rel.publish(priv, "unsigned", script("v2"), false)
	rel.publish(otherKey, "foreign", script("v2"), true)
	rel.publish(priv, "tampered", script("v2"), true)
	rel.files["/tampered"] = script("v2-evil") // replaced after signing
	rel.publish(priv, "checksum-only-tampered", script("v2"), true)
	rel.files["/checksum-only-tampered"+signing.ChecksumSuffix] = []byte(signing.ChecksumLine(script("x"), "checksum-only-tampered"))
	rel.publish(priv, "wrong-version", script("v3"), true)

	cases := map[string]string{
		"unsigned":               "unsigned",
		"foreign":                "signature",
		"tampered":               "sha256",
		"checksum-only-tampered": "sha256",
		"wrong-version":          "reports version",
		"missing":                "404",
	}
	for name, want := range cases {
		err := u.Update(t.Context(), srv.URL+"/"+name, "v2")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, want)
		}
	}
	if got := installed(t, u); got != string(script("v1")) || *restarts != 0 {
		t.Fatalf("a refused binary was installed (restarts %d):\n%s", *restarts, got)
	}
	// Without a public key nothing is installed, signed or not.
	u.PublicKey = nil
	rel.publish(priv, "good", script("v2"), true)
	if err := u.Update(t.Context(), srv.URL+"/good", "v2"); err == nil || !strings.Contains(err.Error(), "no public key") {
		t.Errorf("without key: %v", err)
	}
}

func TestInstallCommitAndRollback(t *testing.T) {
	u, rel, srv, priv, restarts, c := setup(t)
	rel.publish(priv, "firewall-controller-v2", script("v2"), true)
	url := srv.URL + "/firewall-controller-v2"
	if err := u.Update(t.Context(), url, "v1"); err != nil || *restarts != 0 {
		t.Fatalf("the running version was installed again: %v", err)
	}
	if err := u.Update(t.Context(), url, "v2"); err != nil {
		t.Fatal(err)
	}
	if installed(t, u) != string(script("v2")) || *restarts != 1 {
		t.Fatalf("not installed/restarted: %d", *restarts)
	}
	if b, _ := os.ReadFile(u.previousPath()); string(b) != string(script("v1")) {
		t.Errorf("previous binary not kept: %s", b)
	}

	// The new process becomes healthy in time: committed, nothing rolled back later.
	newAgent := restarted(u, "v2")
	if err := newAgent.Startup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := newAgent.Healthy(); err != nil {
		t.Fatal(err)
	}
	c.add(time.Hour)
	if err := newAgent.Startup(t.Context()); err != nil || installed(t, u) != string(script("v2")) {
		t.Fatalf("a committed update was rolled back: %v", err)
	}

	// v3 never becomes healthy: past the deadline it is rolled back to v2.
	rel.publish(priv, "firewall-controller-v3", script("v3"), true)
	url3 := srv.URL + "/firewall-controller-v3"
	if err := newAgent.Update(t.Context(), url3, "v3"); err != nil {
		t.Fatal(err)
	}
	broken := restarted(u, "v3")
	if err := broken.Startup(t.Context()); err != nil {
		t.Fatalf("within the deadline: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- broken.Watch(ctx) }()
	c.add(3 * time.Minute)
	select {
	case err := <-done:
		if !errors.Is(err, ErrRolledBack) {
			t.Fatalf("watch: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no rollback")
	}
	if got := installed(t, u); got != string(script("v2")) {
		t.Fatalf("after rollback:\n%s", got)
	}
	// The previous version starts again, and does not install v3 again.
	back := restarted(u, "v2")
	if err := back.Startup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := back.Update(t.Context(), url3, "v3"); err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Errorf("rolled-back version offered again: %v", err)
	}
	if installed(t, u) != string(script("v2")) {
		t.Error("the rolled-back version was installed again")
	}
}

// A binary that crashes before reporting healthy is rolled back by the next start after
// the deadline (systemd keeps restarting it).
func TestCrashingBinaryRolledBackAtStartup(t *testing.T) {
	u, rel, srv, priv, _, c := setup(t)
	rel.publish(priv, "v2", script("v2"), true)
	if err := u.Update(t.Context(), srv.URL+"/v2", "v2"); err != nil {
		t.Fatal(err)
	}
	crashing := restarted(u, "v2")
	c.add(5 * time.Minute)
	if err := crashing.Startup(t.Context()); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("startup past the deadline: %v", err)
	}
	if installed(t, u) != string(script("v1")) {
		t.Error("not rolled back")
	}
}
