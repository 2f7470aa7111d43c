// Package selfupdate replaces the agent binary with the one the Firewall asks for
// (spec.controllerURL / controllerVersion), signed with internal/signing: the artifact
// bytes are verified against `<url>.sha256` (sha256sum format) and the detached ed25519
// signature `<url>.sig` with the public key from the agent's config. An unsigned,
// mismatched or tampered binary is refused with a status message, never installed.
//
// Installing is atomic (rename over the binary; the old one is kept as <binary>.previous)
// and leaves a marker with a deadline. The new agent commits the update once it has applied
// its rules (Healthy); when it does not within the deadline, or keeps crashing past it, the
// previous binary is put back and the service restarted (rollback).
package selfupdate

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/atomicfile"
	"github.com/palisade-fw/palisade/internal/signing"
)

// maxBinary bounds a download.
const maxBinary = 512 << 20

// ErrRolledBack means the previous binary was put back; the caller should restart.
var ErrRolledBack = errors.New("the update was rolled back to the previous binary")

// Updater installs signed agent binaries.
type Updater struct {
	// Binary is the installed agent binary.
	Binary string
	// PublicKey verifies signatures; nil refuses every update.
	PublicKey ed25519.PublicKey
	// Running is the version of this process.
	Running string
	// HealthTimeout is how long a new binary has to become healthy.
	HealthTimeout time.Duration
	// Restart restarts the agent's service (systemctl restart ...).
	Restart func(ctx context.Context) error
	Client  *http.Client
	Log     *slog.Logger
	Now     func() time.Time

	mu       sync.Mutex
	inFlight string // url being installed
	refused  map[string]string
}

// Marker is the pending update, next to the binary.
type Marker struct {
	Version  string    `json:"version"`
	URL      string    `json:"url"`
	Previous string    `json:"previous"`
	Deadline time.Time `json:"deadline"`
}

func (u *Updater) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

func (u *Updater) markerPath() string   { return u.Binary + ".update.json" }
func (u *Updater) previousPath() string { return u.Binary + ".previous" }
func (u *Updater) failedPath() string   { return u.Binary + ".failed.json" }

// failed returns the update that was rolled back, if it is this one.
func (u *Updater) failed(rawURL, version string) bool {
	data, err := os.ReadFile(u.failedPath())
	if err != nil {
		return false
	}
	var m Marker
	return json.Unmarshal(data, &m) == nil && m.URL == rawURL && m.Version == version
}

// Update installs version from rawURL and restarts, unless this process already runs it.
// The returned error is the status message: why an update was refused or failed.
func (u *Updater) Update(ctx context.Context, rawURL, version string) error {
	if rawURL == "" || version == "" || version == u.Running {
		return nil
	}
	u.mu.Lock()
	if msg, ok := u.refused[rawURL+"@"+version]; ok {
		u.mu.Unlock()
		return errors.New(msg) // the same artifact is not downloaded again
	}
	if u.inFlight != "" {
		u.mu.Unlock()
		return nil
	}
	u.inFlight = rawURL
	u.mu.Unlock()
	if u.failed(rawURL, version) {
		u.mu.Lock()
		u.inFlight = ""
		u.mu.Unlock()
		return fmt.Errorf("not installing %s again: it was rolled back because it did not become healthy within %s; set another controllerURL/controllerVersion", version, u.HealthTimeout)
	}
	defer func() { u.mu.Lock(); u.inFlight = ""; u.mu.Unlock() }()

	if err := u.install(ctx, rawURL, version); err != nil {
		var refusal refusedError
		if errors.As(err, &refusal) {
			u.mu.Lock()
			if u.refused == nil {
				u.refused = map[string]string{}
			}
			u.refused[rawURL+"@"+version] = err.Error()
			u.mu.Unlock()
		}
		return err
	}
	if u.Log != nil {
		u.Log.Info("installed a new agent binary; restarting", "version", version, "url", rawURL)
	}
	if u.Restart == nil {
		return nil
	}
	return u.Restart(ctx)
}

// refusedError is an artifact that is not installed whatever happens next.
type refusedError struct{ msg string }

func (e refusedError) Error() string { return e.msg }

func refuse(format string, args ...any) error {
	return refusedError{msg: fmt.Sprintf(format, args...)}
}

func (u *Updater) install(ctx context.Context, rawURL, version string) error {
	if len(u.PublicKey) == 0 {
		return refuse("refusing %s %s: no public key configured (controllers.firewall.selfUpdate.publicKeyFile), unsigned binaries are never installed", version, rawURL)
	}
	parsed, err := url.Parse(rawURL)
	if err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") {
		return refuse("refusing %s: controllerURL %q is not an http(s) URL", version, rawURL)
	}
	data, err := u.fetch(ctx, rawURL, maxBinary)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", rawURL, err)
	}
	sums, err := u.fetch(ctx, rawURL+signing.ChecksumSuffix, 1<<20)
	if err != nil {
		return refuse("refusing %s: no checksum file %s%s: %v", version, rawURL, signing.ChecksumSuffix, err)
	}
	sig, err := u.fetch(ctx, rawURL+signing.SignatureSuffix, 1<<20)
	if err != nil {
		return refuse("refusing %s: unsigned (no %s%s: %v)", version, rawURL, signing.SignatureSuffix, err)
	}
	if err := signing.VerifyChecksum(sums, data, path.Base(parsed.Path)); err != nil {
		if err2 := signing.VerifyChecksum(sums, data, ""); err2 != nil {
			return refuse("refusing %s: %v", version, err)
		}
	}
	if err := signing.Verify(u.PublicKey, data, sig); err != nil {
		return refuse("refusing %s: signature of %s: %v", version, rawURL, err)
	}

	tmp, err := atomicfile.Create(u.Binary, 0o755)
	if err != nil {
		return err
	}
	defer tmp.Abort()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Finish(); err != nil {
		return err
	}
	// The new binary must at least run and say it is the version asked for.
	if got, err := probeVersion(ctx, tmp.TempName()); err != nil || got != version {
		return refuse("refusing %s: the signed binary reports version %q (%v)", version, got, err)
	}
	// Keep the running binary for the rollback, then replace it in one rename.
	_ = os.Remove(u.previousPath())
	if err := os.Link(u.Binary, u.previousPath()); err != nil {
		return fmt.Errorf("keeping the previous binary: %w", err)
	}
	m := Marker{Version: version, URL: rawURL, Previous: u.Running, Deadline: u.now().Add(u.HealthTimeout)}
	if err := writeJSON(u.markerPath(), m); err != nil {
		return err
	}
	if err := tmp.Commit(); err != nil {
		_ = os.Remove(u.markerPath())
		return fmt.Errorf("replacing the binary: %w", err)
	}
	return nil
}

func probeVersion(ctx context.Context, binary string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	return strings.TrimSpace(string(out)), err
}

func (u *Updater) fetch(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	client := u.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// Pending returns the update waiting to be committed, if any.
func (u *Updater) Pending() (*Marker, error) {
	data, err := os.ReadFile(u.markerPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Marker
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", u.markerPath(), err)
	}
	return &m, nil
}

// Startup runs when the agent starts. A pending update past its deadline (the new binary
// crashed or never became healthy) is rolled back: ErrRolledBack, restart. A marker for a
// version this process is not is stale (e.g. after a rollback) and removed.
func (u *Updater) Startup(ctx context.Context) error {
	m, err := u.Pending()
	if err != nil || m == nil {
		return err
	}
	if m.Version != u.Running {
		// The update did not stick (rolled back): remember it, or the next sync would
		// install it again, forever.
		if err := writeJSON(u.failedPath(), m); err != nil {
			return err
		}
		return os.Remove(u.markerPath())
	}
	if u.now().After(m.Deadline) {
		return u.rollback(ctx, m, "did not become healthy before its deadline")
	}
	return nil
}

// Healthy commits a pending update of this version: the new binary applied its rules.
func (u *Updater) Healthy() error {
	m, err := u.Pending()
	if err != nil || m == nil || m.Version != u.Running {
		return err
	}
	if u.Log != nil {
		u.Log.Info("self-update committed", "version", m.Version)
	}
	return os.Remove(u.markerPath())
}

// Watch rolls a pending update back when it is not committed by its deadline.
func (u *Updater) Watch(ctx context.Context) error {
	for {
		m, err := u.Pending()
		if err != nil || m == nil || m.Version != u.Running {
			return err
		}
		wait := m.Deadline.Sub(u.now())
		if wait <= 0 {
			return u.rollback(ctx, m, "did not become healthy before its deadline")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(wait, 5*time.Second)):
		}
	}
}

func (u *Updater) rollback(ctx context.Context, m *Marker, why string) error {
	if u.Log != nil {
		u.Log.Error("rolling the self-update back", "version", m.Version, "previous", m.Previous, "reason", why)
	}
	if err := os.Rename(u.previousPath(), u.Binary); err != nil {
		return fmt.Errorf("rolling back to %s: %w", u.previousPath(), err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(u.Binary)); err != nil {
		return fmt.Errorf("rolling back to %s: %w", u.previousPath(), err)
	}
	// The marker stays as a record of the failure until the previous version starts and
	// finds it stale; the URL is refused until the spec names another artifact.
	if u.Restart != nil {
		if err := u.Restart(ctx); err != nil {
			return err
		}
	}
	return ErrRolledBack
}

func writeJSON(p string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, data, 0o600)
}
