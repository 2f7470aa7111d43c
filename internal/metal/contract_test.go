package metal_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

// TestNotFoundThroughProductionPath: a 404 as metal-api writes it (the
// error object inside a JSON string) reaches a controller as IsNotFound,
// through the same constructor and options cmd/manager uses.
func TestNotFoundThroughProductionPath(t *testing.T) {
	sim := metalsim.New(metalsim.DefaultConfig())
	url, stop, err := sim.Start()
	mustNoErr(t, err)
	defer stop()

	raw, err := http.Get(url + "/v1/version")
	mustNoErr(t, err)
	raw.Body.Close()
	resp, err := http.Get(url + "/v1/partition/nope")
	mustNoErr(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !bytes.HasPrefix(body, []byte(`"{\"statuscode\":404`)) {
		t.Fatalf("simulator 404 is not in metal-api's format: %s", body)
	}

	c, err := metal.New(metal.Config{
		URL: url, HMACKey: metalsim.DefaultConfig().HMACKeys[metal.AuthTypeAdmin], HMACAuthType: metal.AuthTypeAdmin,
		Timeout: 30 * time.Second,
	})
	mustNoErr(t, err)
	ctx := context.Background()
	_, getErr := c.GetFirewall(ctx, "gone")
	_, freeErr := c.FreeMachine(ctx, "gone")
	_, partErr := c.GetPartition(ctx, "nope")
	for name, err := range map[string]error{"get firewall": getErr, "free machine": freeErr, "get partition": partErr} {
		var apiErr *metal.APIError
		if !metal.IsNotFound(err) || !errors.As(err, &apiErr) || apiErr.RouteLevel || !strings.Contains(apiErr.Message, "NotFound") {
			t.Errorf("%s: %v (%#v), want IsNotFound with metal-api's message", name, err, apiErr)
		}
	}
}

// A bare JSON object is not what metal-api writes; metal-go cannot decode it,
// so it is a status code without a typed entity error.
func TestBareObjectErrorBodyIsNotTyped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"statuscode":404,"message":"NotFound x"}`)
	}))
	defer srv.Close()
	c, err := metal.New(metal.Config{URL: srv.URL})
	mustNoErr(t, err)
	_, err = c.GetFirewall(context.Background(), "x")
	if metal.StatusCode(err) != 404 || metal.IsNotFound(err) {
		t.Fatalf("err = %v: want status 404, IsNotFound false", err)
	}
}

// Every call has a deadline, also the ones never retried.
func TestDeadlineOnNonIdempotentCall(t *testing.T) {
	e := newEnv(t)
	e.sim.Faults().DelayNext(metal.OpFirewallAllocate, 1, time.Hour)
	c := e.client(metal.AuthTypeEdit, func(c *metal.Config) { c.Timeout = 200 * time.Millisecond })
	_, err := c.AllocateFirewall(context.Background(), firewallRequest("fw-slow"))
	if err == nil || metal.StatusCode(err) != 0 {
		t.Fatalf("err = %v, want a deadline error without status", err)
	}
	if n := e.sim.RequestCount(metal.OpFirewallAllocate); n != 1 {
		t.Errorf("allocate sent %d times, want 1", n)
	}
}

// Neither errors nor go-openapi's request dumps (DEBUG=1) carry a key or
// token.
func TestCredentialsNeverInErrorsOrDebugOutput(t *testing.T) {
	t.Setenv("DEBUG", "1")
	t.Setenv("SWAGGER_DEBUG", "1")
	// go-openapi's debug logger writes to os.Stderr.
	r, w, err := os.Pipe()
	mustNoErr(t, err)
	origStderr := os.Stderr
	os.Stderr = w
	var logged bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&logged, r); close(copied) }()
	restore := func() {
		os.Stderr = origStderr
		_ = w.Close()
		<-copied
	}
	defer func() {
		if os.Stderr != origStderr {
			restore()
		}
	}()

	cfg := metalsim.DefaultConfig()
	cfg.BearerTokens = map[string]string{"secret-bearer-token": metal.AuthTypeView}
	sim := metalsim.New(cfg)
	url, stop, err := sim.Start()
	mustNoErr(t, err)
	defer stop()
	ctx := context.Background()
	bearer, err := metal.New(metal.Config{URL: url, BearerToken: "secret-bearer-token"})
	mustNoErr(t, err)
	hmacClient, err := metal.New(metal.Config{URL: url, HMACKey: "secret-hmac-key", HMACAuthType: metal.AuthTypeView})
	mustNoErr(t, err)
	down, err := metal.New(metal.Config{URL: "http://127.0.0.1:1", HMACKey: "secret-hmac-key", Retry: metal.RetryConfig{MaxAttempts: 1}})
	mustNoErr(t, err)

	var errs []error
	if _, err := bearer.GetMachine(ctx, "nope"); err != nil {
		errs = append(errs, err)
	}
	if _, err := bearer.FindFirewalls(ctx, nil); err != nil {
		t.Fatalf("bearer find: %v", err)
	}
	_, err = hmacClient.FindFirewalls(ctx, nil)
	errs = append(errs, err)
	_, err = down.GetMachine(ctx, "x")
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil || strings.Contains(err.Error(), "secret-") {
			t.Errorf("error %v leaks a credential (or is nil)", err)
		}
	}
	restore()
	if strings.Contains(logged.String(), "secret-") || strings.Contains(logged.String(), "Authorization") {
		t.Errorf("debug output shows credentials:\n%s", logged.String())
	}
}
