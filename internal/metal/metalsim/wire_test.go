package metalsim_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-stack/metal-lib/httperrors"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

type wireResponse struct {
	code        int
	contentType string
	body        string
}

func do(t *testing.T, method, url, body string, header map[string]string) wireResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return wireResponse{code: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: string(b)}
}

func openServer(t *testing.T, mutate ...func(*metalsim.Config)) (*metalsim.Simulator, string) {
	t.Helper()
	cfg := metalsim.DefaultConfig()
	cfg.DisableAuth = true
	for _, m := range mutate {
		m(&cfg)
	}
	sim := metalsim.New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// TestErrorBodyGolden pins the error body to what metal-api writes: go-restful
// encodes metal-lib's *httperrors.HTTPErrorResponse through its MarshalText,
// so the object arrives inside a JSON string.
func TestErrorBodyGolden(t *testing.T) {
	_, url := openServer(t)
	got := do(t, http.MethodGet, url+"/v1/machine/nope", "", nil)

	fromLib, err := json.Marshal(httperrors.NotFound(errors.New(`NotFound no machine with id "nope" found`)))
	if err != nil {
		t.Fatal(err)
	}
	const literal = `"{\"statuscode\":404,\"message\":\"NotFound no machine with id \\\"nope\\\" found\"}"`
	if string(fromLib) != literal {
		t.Fatalf("metal-lib encodes %s, the golden literal is %s", fromLib, literal)
	}
	if got.code != http.StatusNotFound || got.contentType != "application/json" || got.body != literal {
		t.Fatalf("got %d %q %s\nwant 404 application/json %s", got.code, got.contentType, got.body, literal)
	}
	var decoded httperrors.HTTPErrorResponse
	if err := json.Unmarshal([]byte(got.body), &decoded); err != nil || decoded.StatusCode != 404 {
		t.Fatalf("metal-lib cannot read the body back: %v %+v", err, decoded)
	}
}

// TestErrorCodesOnTheWire checks every error status the simulator produces
// carries the metal-api body with a matching statuscode.
func TestErrorCodesOnTheWire(t *testing.T) {
	sim, url := openServer(t)
	authed := func(t *testing.T) string {
		cfg := metalsim.DefaultConfig()
		s := metalsim.New(cfg)
		srv := httptest.NewServer(s.Handler())
		t.Cleanup(srv.Close)
		return srv.URL
	}(t)
	free := sim.Machines()[0].ID
	tests := []struct {
		name, method, url, body string
		header                  map[string]string
		setup                   func()
		code                    int
	}{
		{name: "400 unreadable body", method: "POST", url: url + "/v1/machine/find", body: "{", code: 400},
		{name: "403 bad hmac", method: "POST", url: authed + "/v1/machine/find", body: "{}", header: map[string]string{"Authorization": "Metal-View deadbeef", "X-Date": "2024-01-01T00:00:00Z"}, code: 403},
		{name: "403 guest on a view route", method: "GET", url: authed + "/v1/machine/x", code: 403},
		{name: "404 unknown machine", method: "GET", url: url + "/v1/machine/nope", code: 404},
		{name: "409 conflict on update", method: "POST", url: url + "/v1/machine", body: `{"id":"x"}`, setup: func() { sim.Faults().ConflictOnUpdate(1) }, code: 409},
		{name: "422 free of a locked machine", method: "DELETE", url: url + "/v1/machine/" + free + "/free", setup: func() { _ = sim.Faults().Lock(free) }, code: 422},
		{name: "500 injected", method: "GET", url: url + "/v1/size/" + metalsim.DefaultSize, setup: func() { sim.Faults().FailNext(metal.OpSizeGet, 1, 500) }, code: 500},
		{name: "503 injected", method: "GET", url: url + "/v1/partition/" + metalsim.DefaultPartition, setup: func() { sim.Faults().FailNext(metal.OpPartitionGet, 1, 503) }, code: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			got := do(t, tt.method, tt.url, tt.body, tt.header)
			var quoted string
			if err := json.Unmarshal([]byte(got.body), &quoted); err != nil {
				t.Fatalf("body %s is not a JSON string: %v", got.body, err)
			}
			var e httperrors.HTTPErrorResponse
			if err := e.UnmarshalText([]byte(quoted)); err != nil {
				t.Fatal(err)
			}
			if got.code != tt.code || e.StatusCode != tt.code || e.Message == "" {
				t.Fatalf("got %d %s, want %d", got.code, got.body, tt.code)
			}
		})
	}
}

func TestDeleteVersionAndHealthRoutes(t *testing.T) {
	sim, url := openServer(t)
	free := sim.Machines()[0].ID
	if got := do(t, "DELETE", url+"/v1/machine/"+free, "", nil); got.code != 200 || !strings.Contains(got.body, free) {
		t.Fatalf("delete: %d %s", got.code, got.body)
	}
	if got := do(t, "GET", url+"/v1/machine/"+free, "", nil); got.code != 404 {
		t.Fatalf("deleted machine still served: %d", got.code)
	}
	// An allocated machine must be freed before it can be deleted.
	alloc, _ := json.Marshal(firewallRequest("fw-del"))
	got := do(t, "POST", url+"/v1/firewall/allocate", string(alloc), nil)
	var fw metal.FirewallResponse
	if err := json.Unmarshal([]byte(got.body), &fw); err != nil || got.code != 200 {
		t.Fatalf("allocate: %d %s", got.code, got.body)
	}
	if got := do(t, "DELETE", url+"/v1/machine/"+fw.ID, "", nil); got.code != 422 {
		t.Fatalf("delete of an allocated machine: %d %s", got.code, got.body)
	}
	if len(sim.Timeline()) == 0 || sim.Timeline()[0].Kind != metalsim.TimelineDeleted {
		t.Errorf("timeline = %+v", sim.Timeline())
	}

	var version struct{ Name, Version string }
	got = do(t, "GET", url+"/v1/version", "", nil)
	if err := json.Unmarshal([]byte(got.body), &version); err != nil || got.code != 200 || version.Name != "metal-api" {
		t.Fatalf("version: %d %s", got.code, got.body)
	}
	var health struct{ Status string }
	got = do(t, "GET", url+"/v1/health", "", nil)
	if err := json.Unmarshal([]byte(got.body), &health); err != nil || got.code != 200 || health.Status != "healthy" {
		t.Fatalf("health: %d %s", got.code, got.body)
	}
}

// TestVersionAndHealthNeedNoAuth: metal-api serves both without a group check.
func TestVersionAndHealthNeedNoAuth(t *testing.T) {
	sim := metalsim.New(metalsim.DefaultConfig())
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	for _, p := range []string{"/v1/version", "/v1/health"} {
		if got := do(t, "GET", srv.URL+p, "", nil); got.code != 200 {
			t.Errorf("%s as guest: %d %s", p, got.code, got.body)
		}
	}
}

func TestAdminFaultsOverHTTP(t *testing.T) {
	sim, url := openServer(t)
	var list struct {
		Faults []struct {
			Name string
			Doc  string
		}
		Operations []string
	}
	got := do(t, "GET", url+metalsim.AdminPrefix+"faults", "", nil)
	if err := json.Unmarshal([]byte(got.body), &list); err != nil || got.code != 200 {
		t.Fatalf("list: %d %s", got.code, got.body)
	}
	names := map[string]bool{}
	for _, f := range list.Faults {
		names[f.Name] = f.Doc != ""
	}
	for _, want := range []string{"conflict-on-update", "fail-next", "lose-next-allocate-response", "stall-provisioning", "vanish", "reset", "slow-server-side"} {
		if !names[want] {
			t.Errorf("fault %q not listed with a doc: %v", want, names)
		}
	}

	// 409 on update, injected over HTTP only.
	alloc, _ := json.Marshal(firewallRequest("fw-admin"))
	var fw metal.FirewallResponse
	got = do(t, "POST", url+"/v1/firewall/allocate", string(alloc), nil)
	if err := json.Unmarshal([]byte(got.body), &fw); err != nil {
		t.Fatal(got.body)
	}
	if got := do(t, "POST", url+metalsim.AdminPrefix+"faults/conflict-on-update", `{"count":1}`, nil); got.code != 200 {
		t.Fatalf("apply: %d %s", got.code, got.body)
	}
	update := `{"id":"` + fw.ID + `","tags":["a"]}`
	if got := do(t, "POST", url+"/v1/machine", update, nil); got.code != 409 || !strings.Contains(got.body, `\"statuscode\":409`) {
		t.Fatalf("update after fault: %d %s", got.code, got.body)
	}
	if got := do(t, "POST", url+"/v1/machine", update, nil); got.code != 200 {
		t.Fatalf("second update: %d %s", got.code, got.body)
	}

	// Any code for any operation; then a target fault; then reset.
	do(t, "POST", url+metalsim.AdminPrefix+"faults/fail-next", `{"op":"firewall.find","count":1,"code":503}`, nil)
	if got := do(t, "POST", url+"/v1/firewall/find", "{}", nil); got.code != 503 {
		t.Fatalf("find after fail-next: %d", got.code)
	}
	if got := do(t, "POST", url+metalsim.AdminPrefix+"faults/vanish", `{"target":"fw-admin"}`, nil); got.code != 200 {
		t.Fatalf("vanish: %d %s", got.code, got.body)
	}
	if _, ok := sim.Machine(fw.ID); ok {
		t.Fatal("vanish over HTTP left the machine")
	}

	// An allocate that completes after the client gave up, injected over HTTP.
	if got := do(t, "POST", url+metalsim.AdminPrefix+"faults/slow-server-side", `{"op":"firewall.allocate","count":1,"delay":"300ms"}`, nil); got.code != 200 {
		t.Fatalf("slow-server-side: %d %s", got.code, got.body)
	}
	slow, _ := json.Marshal(firewallRequest("fw-slow"))
	req, err := http.NewRequest("POST", url+"/v1/firewall/allocate", strings.NewReader(string(slow)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if resp, err := (&http.Client{Timeout: 50 * time.Millisecond}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the slow allocate answered within the client's timeout: %d", resp.StatusCode)
	}
	if _, ok := sim.Machine("fw-slow"); ok {
		t.Fatal("the slow allocate was visible before it completed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := sim.Machine("fw-slow"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the allocate the client gave up on never completed server-side")
		}
		time.Sleep(20 * time.Millisecond)
	}

	for name, tc := range map[string]struct {
		path, body string
		code       int
	}{
		"unknown fault":    {"faults/nope", "{}", 404},
		"unknown argument": {"faults/conflict-on-update", `{"n":1}`, 400},
		"unknown op":       {"faults/fail-next", `{"op":"nope","count":1,"code":500}`, 400},
		"missing target":   {"faults/lock", `{}`, 400},
		"unknown machine":  {"faults/lock", `{"target":"ghost"}`, 400},
	} {
		if got := do(t, "POST", url+metalsim.AdminPrefix+tc.path, tc.body, nil); got.code != tc.code || !strings.Contains(got.body, "error") {
			t.Errorf("%s: %d %s, want %d", name, got.code, got.body, tc.code)
		}
	}
}

func TestFaultsFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	base, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "samples", "metal-sim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sim.yaml")
	extra := "\nfaults:\n  - name: fail-next\n    args: {op: size.get, count: 1, code: 502}\n  - name: conflict-on-update\n    args: {count: 2}\n"
	if err := os.WriteFile(path, append(base, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := metalsim.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DisableAuth = true
	sim := metalsim.New(cfg)
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	if got := do(t, "GET", srv.URL+"/v1/size/"+cfg.Sizes[0].ID, "", nil); got.code != 502 {
		t.Fatalf("configured fail-next: %d %s", got.code, got.body)
	}
	if got := do(t, "POST", srv.URL+"/v1/machine", `{"id":"x"}`, nil); got.code != 409 {
		t.Fatalf("configured conflict: %d %s", got.code, got.body)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, append(base, "\nfaults:\n  - name: conflict-on-update\n    args: {times: 1}\n  - name: nope\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := metalsim.LoadConfig(bad); err == nil || !strings.Contains(err.Error(), "unknown fault") || !strings.Contains(err.Error(), "times") {
		t.Fatalf("bad faults accepted: %v", err)
	}
}
