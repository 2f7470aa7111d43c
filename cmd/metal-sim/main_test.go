package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metal-stack/security"
)

// syncBuffer lets the test read output while run writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServesSignedFindWithExampleConfig starts metal-sim on loopback with
// the committed example config and sends a hand-signed POST /v1/firewall/find.
func TestServesSignedFindWithExampleConfig(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--config", "../../config/samples/metal-sim.yaml"}, out,
			func(url string) { urls <- url })
	}()
	var url string
	select {
	case url = <-urls:
	case err := <-done:
		t.Fatalf("run exited early: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		t.Fatal("metal-sim did not start")
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("url %q is not on loopback", url)
	}
	for _, want := range []string{"listening on " + url, "Metal-View, Metal-Edit, Metal-Admin, Bearer"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("startup output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), "dev-edit-key") {
		t.Error("startup output leaks an hmac key")
	}

	view := security.NewHMACAuth("Metal-View", []byte("dev-view-key"))
	wrong := security.NewHMACAuth("Metal-View", []byte("wrong"))
	req, err := http.NewRequest(http.MethodPost, url+"/v1/firewall/find", strings.NewReader(`{"allocation_project":"project-a"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range view.AuthHeaders(http.MethodPost, time.Now()) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "[]" {
		t.Fatalf("signed find: %d %s", resp.StatusCode, body)
	}

	// The same request signed with a wrong key is refused.
	req2 := req.Clone(context.Background())
	req2.Body = io.NopCloser(strings.NewReader(`{}`))
	for k, v := range wrong.AuthHeaders(http.MethodPost, time.Now()) {
		req2.Header.Set(k, v)
	}
	resp2, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong key: %d, want 403", resp2.StatusCode)
	}

	// Faults are reachable over HTTP: a 409 on the next machine update.
	admin := strings.TrimSuffix(url, "/") + "/_sim/faults/conflict-on-update"
	resp3, err := http.Post(admin, "application/json", strings.NewReader(`{"count":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp3.Body.Close()
	if resp3.StatusCode != http.StatusOK {
		t.Fatalf("admin fault: %d", resp3.StatusCode)
	}
	resp4, err := http.Post(url+"/v1/machine", "application/json", strings.NewReader(`{"id":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	body4, _ := io.ReadAll(resp4.Body)
	resp4.Body.Close()
	if resp4.StatusCode != http.StatusConflict || !strings.HasPrefix(string(body4), `"{\"statuscode\":409`) {
		t.Fatalf("update after the fault: %d %s, want 409 in metal-api's format", resp4.StatusCode, body4)
	}

	cancel() // what SIGINT/SIGTERM do via signal.NotifyContext
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("metal-sim did not shut down")
	}
	if !strings.Contains(out.String(), "shutting down") {
		t.Errorf("no shutdown message:\n%s", out)
	}
}

func TestBadConfigFails(t *testing.T) {
	err := run(context.Background(), []string{"--config", "does-not-exist.yaml", "--listen", "127.0.0.1:0"}, io.Discard, nil)
	if err == nil {
		t.Fatal("missing config accepted")
	}
}
