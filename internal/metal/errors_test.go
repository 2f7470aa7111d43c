package metal_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metal-stack/security"
	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

func TestErrorCodes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		setup  func(e *env)
		call   func(e *env) error
		code   int
		is     func(error) bool
		sends  int // requests the simulator must see for the op; 0 = don't check
		op     string
		inBody string
	}{
		{
			name: "400 unknown image",
			call: func(e *env) error {
				r := firewallRequest("fw")
				r.ImageID = "firewall-ubuntu-9.9"
				_, err := e.client(metal.AuthTypeEdit).AllocateFirewall(ctx, r)
				return err
			},
			code: 400, is: metal.IsBadRequest, inBody: "not found",
		},
		{
			name: "400 image without firewall feature",
			call: func(e *env) error {
				r := firewallRequest("fw")
				r.ImageID = metalsim.DefaultMachineImage
				_, err := e.client(metal.AuthTypeEdit).AllocateFirewall(ctx, r)
				return err
			},
			code: 400, is: metal.IsBadRequest, inBody: "not usable for a firewall",
		},
		{
			name: "400 bad rule comment",
			call: func(e *env) error {
				r := firewallRequest("fw")
				r.FirewallRules = &metal.FirewallRules{Egress: []metal.FirewallEgressRule{{Ports: []int32{1}, To: []string{"1.2.3.0/24"}, Comment: "digits 123"}}}
				_, err := e.client(metal.AuthTypeEdit).AllocateFirewall(ctx, r)
				return err
			},
			code: 400, is: metal.IsBadRequest,
		},
		{
			name: "400 update of a free machine",
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeAdmin).UpdateMachine(ctx, &metal.MachineUpdateRequest{ID: e.sim.Machines()[0].ID, Tags: []string{"a"}})
				return err
			},
			code: 400, is: metal.IsBadRequest,
		},
		{
			name: "403 edit may not update (admin only)",
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeEdit).UpdateMachine(ctx, &metal.MachineUpdateRequest{ID: "x"})
				return err
			},
			code: 403, is: metal.IsForbidden, inBody: "not member",
		},
		{
			name: "403 view may not allocate",
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeView).AllocateFirewall(ctx, firewallRequest("fw"))
				return err
			},
			code: 403, is: metal.IsForbidden, op: metal.OpFirewallAllocate, sends: 1,
		},
		{
			name: "404 unknown machine",
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeView).GetMachine(ctx, "nope")
				return err
			},
			code: 404, is: metal.IsNotFound, op: metal.OpMachineGet, sends: 1,
		},
		{
			name: "404 free of an unknown machine (the delete path)",
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeEdit).FreeMachine(ctx, "gone")
				return err
			},
			code: 404, is: metal.IsNotFound, op: metal.OpMachineFree, sends: 1,
		},
		{
			name: "404 free machine is not a firewall",
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeView).GetFirewall(ctx, e.sim.Machines()[0].ID)
				return err
			},
			code: 404, is: metal.IsNotFound, inBody: "not a firewall",
		},
		{
			name: "404 unknown project on allocate",
			call: func(e *env) error {
				r := firewallRequest("fw")
				r.ProjectID = "ghost"
				_, err := e.client(metal.AuthTypeEdit).AllocateFirewall(ctx, r)
				return err
			},
			code: 404, is: metal.IsNotFound,
		},
		{
			name: "404 unknown network on allocate",
			call: func(e *env) error {
				r := firewallRequest("fw")
				r.Networks = append(r.Networks, metal.MachineAllocationNetwork{NetworkID: "ghost"})
				_, err := e.client(metal.AuthTypeEdit).AllocateFirewall(ctx, r)
				return err
			},
			code: 404, is: metal.IsNotFound,
		},
		{
			name:  "409 conflict on update is not retried",
			setup: func(e *env) { e.sim.Faults().ConflictOnUpdate(1) },
			call: func(e *env) error {
				fw, err := e.client(metal.AuthTypeEdit).AllocateFirewall(ctx, firewallRequest("fw"))
				if err != nil {
					return err
				}
				_, err = e.client(metal.AuthTypeAdmin).UpdateMachine(ctx, &metal.MachineUpdateRequest{ID: fw.ID, Tags: []string{"a"}})
				return err
			},
			code: 409, is: metal.IsConflict, op: metal.OpMachineUpdate, sends: 1,
		},
		{
			name:  "415 from the server is typed",
			setup: func(e *env) { e.sim.Faults().FailNext(metal.OpImageFind, 1, http.StatusUnsupportedMediaType) },
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeView).FindImages(ctx, nil)
				return err
			},
			code: 415, is: metal.IsUnsupportedMediaType,
		},
		{
			name: "422 private network of another project",
			call: func(e *env) error {
				r := firewallRequest("fw")
				r.Networks[1].NetworkID = metalsim.DefaultOtherPrivate
				_, err := e.client(metal.AuthTypeEdit).AllocateFirewall(ctx, r)
				return err
			},
			code: 422, is: metal.IsUnprocessable,
		},
		{
			name: "422 no machine available",
			call: func(e *env) error {
				c := e.client(metal.AuthTypeEdit)
				for i := range metalsim.DefaultPoolSize + 1 {
					if _, err := c.AllocateFirewall(ctx, firewallRequest("fw-"+string(rune('a'+i)))); err != nil {
						return err
					}
				}
				return nil
			},
			code: 422, is: metal.IsUnprocessable, inBody: "no machine available",
		},
		{
			name: "422 invalid ssh key",
			call: func(e *env) error {
				r := firewallRequest("fw")
				r.SSHPubKeys = []string{"ssh-rsa not-base64!"}
				_, err := e.client(metal.AuthTypeEdit).AllocateFirewall(ctx, r)
				return err
			},
			code: 422, is: metal.IsUnprocessable,
		},
		{
			name: "422 free of a locked machine",
			call: func(e *env) error {
				fw, err := e.client(metal.AuthTypeEdit).AllocateFirewall(ctx, firewallRequest("fw"))
				if err != nil {
					return err
				}
				mustNoErr(e.t, e.sim.Faults().Lock(fw.ID))
				_, err = e.client(metal.AuthTypeEdit).FreeMachine(ctx, fw.ID)
				return err
			},
			code: 422, is: metal.IsUnprocessable, inBody: "locked",
		},
		{
			name:  "500 on allocate is not retried",
			setup: func(e *env) { e.sim.Faults().FailNext(metal.OpFirewallAllocate, 1, 500) },
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeEdit).AllocateFirewall(ctx, firewallRequest("fw"))
				return err
			},
			code: 500, is: metal.IsServerError, op: metal.OpFirewallAllocate, sends: 1,
		},
		{
			name:  "503 on latest image is retried, then final",
			setup: func(e *env) { e.sim.Faults().FailNext(metal.OpImageLatest, 100, http.StatusServiceUnavailable) },
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeView).GetLatestImage(ctx, metalsim.DefaultImageShorthand)
				return err
			},
			code: 503, is: metal.IsServerError, op: metal.OpImageLatest, sends: metal.DefaultMaxAttempts,
		},
		{
			name:  "502 on find firewalls is retried, then final",
			setup: func(e *env) { e.sim.Faults().FailNext(metal.OpFirewallFind, 100, http.StatusBadGateway) },
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeView).FindFirewalls(ctx, nil)
				return err
			},
			code: 502, is: metal.IsServerError, op: metal.OpFirewallFind, sends: metal.DefaultMaxAttempts,
		},
		{
			name:  "500 on free is not retried",
			setup: func(e *env) { e.sim.Faults().FailNext(metal.OpMachineFree, 5, 500) },
			call: func(e *env) error {
				_, err := e.client(metal.AuthTypeEdit).FreeMachine(ctx, e.sim.Machines()[0].ID)
				return err
			},
			code: 500, is: metal.IsServerError, op: metal.OpMachineFree, sends: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			err := tt.call(e)
			var apiErr *metal.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *metal.APIError", err)
			}
			if apiErr.StatusCode != tt.code || !tt.is(err) || apiErr.RouteLevel {
				t.Fatalf("err = %v (route level %v), want %d", err, apiErr.RouteLevel, tt.code)
			}
			if apiErr.Message == "" || !strings.Contains(apiErr.Message, tt.inBody) {
				t.Errorf("message %q does not contain %q", apiErr.Message, tt.inBody)
			}
			if tt.sends > 0 {
				if n := e.sim.RequestCount(tt.op); n != tt.sends {
					t.Errorf("%s sent %d times, want %d", tt.op, n, tt.sends)
				}
			}
		})
	}
}

func TestAuthFailures(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	find := func(c *metal.HTTPClient) error {
		_, err := c.FindFirewalls(ctx, &metal.FirewallFindRequest{})
		return err
	}
	mustNoErr(t, find(e.client(metal.AuthTypeView)))

	wrongKey := e.client(metal.AuthTypeEdit, func(c *metal.Config) { c.HMACKey = "wrong" })
	staleClock := clocktesting.NewFakeClock(e.clock.Now().Add(-31 * time.Second))
	stale := e.client(metal.AuthTypeEdit, func(c *metal.Config) { c.Clock = staleClock })
	adminLifetime := e.client(metal.AuthTypeAdmin, func(c *metal.Config) { c.Clock = staleClock })
	futureClock := clocktesting.NewFakeClock(e.clock.Now().Add(time.Hour))
	future := e.client(metal.AuthTypeEdit, func(c *metal.Config) { c.Clock = futureClock })
	noAuth := e.client(metal.AuthTypeEdit, func(c *metal.Config) { c.HMACKey = "" })
	badBearer := e.client(metal.AuthTypeEdit, func(c *metal.Config) { c.HMACKey = ""; c.BearerToken = "nope" })

	for name, c := range map[string]*metal.HTTPClient{"wrong key": wrongKey, "stale X-Date": stale, "no Authorization": noAuth, "unknown bearer": badBearer} {
		if err := find(c); !metal.IsForbidden(err) {
			t.Errorf("%s: err = %v, want 403", name, err)
		}
	}
	if err := find(adminLifetime); err != nil {
		t.Errorf("admin keys live 90s; a 31s old X-Date must pass: %v", err)
	}
	if err := find(future); err != nil {
		t.Errorf("future X-Date must be accepted like metal-api does: %v", err)
	}
	if n := e.sim.RequestCount(metal.OpFirewallFind); n != 7 {
		t.Errorf("403s must not be retried: saw %d find requests, want 7", n)
	}

	// Raw requests: a missing X-Date or a tampered method fail too.
	signer := security.NewHMACAuth(metal.AuthTypeView, []byte(e.cfg.HMACKeys[metal.AuthTypeView]))
	sign := func(method string, drop ...string) map[string]string {
		h := signer.AuthHeaders(method, e.clock.Now())
		for _, d := range drop {
			delete(h, d)
		}
		return h
	}
	for name, h := range map[string]map[string]string{
		"missing X-Date": sign("POST", "X-Date"),
		"signed for GET": sign("GET"),
		"missing salt":   sign("POST", "X-Data-Salt"),
	} {
		resp := rawPost(t, e.url+"/v1/firewall/find", "application/json", h)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.body, `\"statuscode\":403`) {
			t.Errorf("%s: %d %s, want JSON 403", name, resp.StatusCode, resp.body)
		}
	}
	good := sign("POST")
	if resp := rawPost(t, e.url+"/v1/firewall/find", "application/json", good); resp.StatusCode != 200 || resp.body != "[]" {
		t.Errorf("correctly signed raw request: %d %s", resp.StatusCode, resp.body)
	}
	// go-restful's router answers: plain text, not JSON.
	if resp := rawPost(t, e.url+"/v1/firewall/find", "", good); resp.StatusCode != 415 || resp.body != "415: Unsupported Media Type" {
		t.Errorf("missing Content-Type: %d %q", resp.StatusCode, resp.body)
	}
	htmlOnly := map[string]string{"Accept": "text/html"}
	for k, v := range good {
		htmlOnly[k] = v
	}
	if resp := rawPost(t, e.url+"/v1/firewall/find", "application/json", htmlOnly); resp.StatusCode != 406 {
		t.Errorf("non-JSON Accept: %d %q", resp.StatusCode, resp.body)
	}
	if resp := rawPost(t, e.url+"/v1/nothing", "application/json", good); resp.StatusCode != 404 || resp.body != "404: Page Not Found" {
		t.Errorf("unknown route: %d %q", resp.StatusCode, resp.body)
	}
	if resp := rawPost(t, e.url+"/v1/size/x", "application/json", good); resp.StatusCode != 405 {
		t.Errorf("wrong method: %d %q", resp.StatusCode, resp.body)
	}
}

type rawResponse struct {
	StatusCode int
	body       string
}

func rawPost(t *testing.T, url, contentType string, headers map[string]string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString("{}"))
	mustNoErr(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	mustNoErr(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResponse{StatusCode: resp.StatusCode, body: string(b)}
}

// A wrong base path yields the router's plain 404, which must not look
// like "the firewall is gone" to a controller.
func TestRouteLevelNotFoundIsNotEntityNotFound(t *testing.T) {
	e := newEnv(t)
	c := e.client(metal.AuthTypeView, func(c *metal.Config) { c.URL = e.url + "/wrong-base" })
	_, err := c.GetFirewall(context.Background(), "x")
	if metal.StatusCode(err) != 404 || metal.IsNotFound(err) {
		t.Fatalf("err = %v: want status 404 but IsNotFound false", err)
	}
}

func TestRetriesOnlyIdempotentCalls(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(metal.AuthTypeView)

	e.sim.Faults().FailNext(metal.OpFirewallFind, 2, http.StatusServiceUnavailable)
	_, err := c.FindFirewalls(ctx, nil)
	mustNoErr(t, err)
	if n := e.sim.RequestCount(metal.OpFirewallFind); n != 3 {
		t.Errorf("find attempts = %d, want 3 (two 503s then success)", n)
	}

	e.sim.Faults().FailNext(metal.OpMachineGet, 100, 500)
	limited := e.client(metal.AuthTypeView, func(c *metal.Config) { c.Retry.MaxAttempts = 3 })
	if _, err := limited.GetMachine(ctx, "x"); !metal.IsServerError(err) {
		t.Fatalf("err = %v, want the last 500", err)
	}
	if n := e.sim.RequestCount(metal.OpMachineGet); n != 3 {
		t.Errorf("get attempts = %d, want MaxAttempts=3", n)
	}

	// A hung attempt is cut by AttemptTimeout and retried.
	e.sim.Faults().DelayNext(metal.OpSizeGet, 1, time.Minute)
	fast := e.client(metal.AuthTypeView, func(c *metal.Config) { c.Retry.AttemptTimeout = 200 * time.Millisecond })
	if _, err := fast.GetSize(ctx, metalsim.DefaultSize); err != nil {
		t.Fatalf("timed-out attempt was not retried: %v", err)
	}
	if n := e.sim.RequestCount(metal.OpSizeGet); n != 2 {
		t.Errorf("size attempts = %d, want 2", n)
	}

	// 4xx is final even for idempotent calls.
	if _, err := c.GetNetwork(ctx, "ghost"); !metal.IsNotFound(err) {
		t.Fatal(err)
	}
	if n := e.sim.RequestCount(metal.OpNetworkGet); n != 1 {
		t.Errorf("404 was retried: %d attempts", n)
	}

	// The caller's deadline stops retries.
	e.sim.Faults().FailNext(metal.OpImageGet, 100, 500)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.GetImage(cctx, metalsim.DefaultImage); err == nil {
		t.Fatal("cancelled context still succeeded")
	}
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	c := e.client(metal.AuthTypeView, func(c *metal.Config) { c.Registerer = reg })
	// A second client on the same registry reuses the collectors.
	c2 := e.client(metal.AuthTypeView, func(c *metal.Config) { c.Registerer = reg })

	_, err := c.GetSize(ctx, metalsim.DefaultSize)
	mustNoErr(t, err)
	_, _ = c2.GetSize(ctx, "ghost")
	_, _ = c2.GetSize(ctx, "ghost")

	families, err := reg.Gather()
	mustNoErr(t, err)
	counts := map[string]float64{}
	var histogramSamples uint64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "palisade_metal_api_requests_total":
				counts[labels["operation"]+"/"+labels["code"]] = m.GetCounter().GetValue()
			case "palisade_metal_api_request_duration_seconds":
				if labels["operation"] == metal.OpSizeGet {
					histogramSamples = m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	if counts["size.get/200"] != 1 || counts["size.get/404"] != 2 {
		t.Errorf("request counters = %v", counts)
	}
	if histogramSamples != 3 {
		t.Errorf("duration samples = %d, want 3", histogramSamples)
	}
}

func TestBasePathAndBearerToken(t *testing.T) {
	cfg := metalsim.DefaultConfig()
	cfg.BasePath = "/metal/"
	cfg.BearerTokens = map[string]string{"token-1": metal.AuthTypeEdit}
	sim := metalsim.New(cfg)
	url, stop, err := sim.Start()
	mustNoErr(t, err)
	defer stop()
	if !strings.HasSuffix(url, "/metal") {
		t.Fatalf("url %q lacks the base path", url)
	}
	c, err := metal.New(metal.Config{URL: url, BearerToken: "token-1"})
	mustNoErr(t, err)
	fw, err := c.AllocateFirewall(context.Background(), firewallRequest("fw-bearer"))
	mustNoErr(t, err)
	if _, err := c.GetFirewall(context.Background(), fw.ID); err != nil {
		t.Fatal(err)
	}
	recs := sim.Requests()
	if recs[0].Path != "/metal/v1/firewall/allocate" || recs[0].AuthType != metal.AuthTypeEdit || recs[0].Status != 200 {
		t.Errorf("request record = %+v", recs[0])
	}
	// Without the base path the router answers 404.
	bare, err := metal.New(metal.Config{URL: strings.TrimSuffix(url, "/metal"), BearerToken: "token-1"})
	mustNoErr(t, err)
	if _, err := bare.GetFirewall(context.Background(), fw.ID); metal.StatusCode(err) != 404 || metal.IsNotFound(err) {
		t.Errorf("request outside the base path: %v", err)
	}
}
