package metal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	mgclient "github.com/metal-stack/metal-go/api/client"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// Client is the subset of metal-api that Palisade's controllers use.
// Controllers depend on this interface; HTTPClient implements it on metal-go.
type Client interface {
	AllocateFirewall(ctx context.Context, req *FirewallCreateRequest) (*FirewallResponse, error)
	FindFirewalls(ctx context.Context, req *FirewallFindRequest) ([]*FirewallResponse, error)
	GetFirewall(ctx context.Context, id string) (*FirewallResponse, error)
	GetMachine(ctx context.Context, id string) (*MachineResponse, error)
	FindMachines(ctx context.Context, req *MachineFindRequest) ([]*MachineResponse, error)
	UpdateMachine(ctx context.Context, req *MachineUpdateRequest) (*MachineResponse, error)
	FreeMachine(ctx context.Context, id string) (*MachineResponse, error)
	ReinstallMachine(ctx context.Context, req *MachineReinstallRequest) (*MachineResponse, error)
	GetImage(ctx context.Context, id string) (*ImageResponse, error)
	GetLatestImage(ctx context.Context, id string) (*ImageResponse, error)
	FindImages(ctx context.Context, req *ImageFindRequest) ([]*ImageResponse, error)
	GetNetwork(ctx context.Context, id string) (*NetworkResponse, error)
	FindNetworks(ctx context.Context, req *NetworkFindRequest) ([]*NetworkResponse, error)
	GetSize(ctx context.Context, id string) (*SizeResponse, error)
	GetPartition(ctx context.Context, id string) (*PartitionResponse, error)
	GetProject(ctx context.Context, id string) (*ProjectResponse, error)
}

var _ Client = (*HTTPClient)(nil)

// Defaults applied by New.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
	DefaultMaxAttempts    = 4
	DefaultInitialBackoff = 200 * time.Millisecond
	DefaultMaxBackoff     = 3 * time.Second
)

// RetryConfig tunes retries of idempotent calls (GET and find). Zero fields
// take the defaults above; MaxAttempts 1 disables retries.
type RetryConfig struct {
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// AttemptTimeout bounds one attempt of an idempotent call so a hung request can be
	// retried within Config.Timeout.
	AttemptTimeout time.Duration
}

// Credential is one metal-api identity: an HMAC key with its auth type, or
// a bearer token. HMACKey wins when both are set. Secrets are never logged.
type Credential struct {
	HMACKey string
	// HMACAuthType is Metal-View, Metal-Edit or Metal-Admin.
	HMACAuthType string
	BearerToken  string
}

func (c *Credential) set() bool { return c != nil && (c.HMACKey != "" || c.BearerToken != "") }

// Config configures an HTTPClient. HMACKey (or BearerToken) is the default
// credential; View, Edit and Admin are optional credentials per purpose:
// reads (get, find) need View, allocate, free and reinstall need Edit, and
// machine update needs Admin. A call signs with the credential of its
// purpose, else with the next stronger purpose credential given, else with
// the default one. One key for everything still works.
type Config struct {
	// URL is the metal-api base URL including its base path, e.g.
	// "https://api.example/metal".
	URL string
	// HMACKey is the shared secret; it is never logged or printed.
	HMACKey string
	// HMACAuthType is Metal-View, Metal-Edit or Metal-Admin; default
	// Metal-Edit. UpdateMachine (tag and ssh key sync) needs Metal-Admin.
	HMACAuthType string
	BearerToken  string
	// View, Edit and Admin are per-purpose credentials; an empty
	// HMACAuthType takes the purpose's own (Metal-View, ...).
	View, Edit, Admin *Credential
	// Timeout bounds a whole call including retries; default 30s.
	Timeout time.Duration
	Retry   RetryConfig
	// Registerer receives the client metrics; nil disables them.
	Registerer prometheus.Registerer
	// HTTPClient's transport carries the requests; default a clone of
	// http.DefaultTransport. Its Timeout is ignored: Timeout and
	// Retry.AttemptTimeout bound every call.
	HTTPClient *http.Client
	// Clock stamps X-Date; default the real clock. Tests that drive a
	// simulator with a fake clock pass the same clock here.
	Clock clock.PassiveClock
	// UserAgent is sent with each request.
	UserAgent string
}

// String redacts the secrets so a logged Config never leaks them.
func (c Config) String() string {
	auth := describe(&Credential{HMACKey: c.HMACKey, HMACAuthType: c.authType(), BearerToken: c.BearerToken})
	for _, p := range []struct {
		name, ownType string
		cred          *Credential
	}{{"view", AuthTypeView, c.View}, {"edit", AuthTypeEdit, c.Edit}, {"admin", AuthTypeAdmin, c.Admin}} {
		if p.cred.set() {
			cred := *p.cred
			cred.HMACAuthType = orDefault(cred.HMACAuthType, p.ownType)
			auth += ", " + p.name + ":" + describe(&cred)
		}
	}
	return fmt.Sprintf("metal.Config{URL:%q, Auth:%s, Timeout:%s}", c.URL, auth, c.Timeout)
}

func describe(c *Credential) string {
	switch {
	case c.HMACKey != "":
		return "hmac(" + c.HMACAuthType + ")"
	case c.BearerToken != "":
		return "bearer"
	}
	return "none"
}

// GoString keeps %#v from printing the secrets as well.
func (c Config) GoString() string { return c.String() }

func (c Config) authType() string {
	if c.HMACAuthType == "" {
		return AuthTypeEdit
	}
	return c.HMACAuthType
}

// HTTPClient calls metal-api through metal-go's generated client. It adds
// what metal-go leaves to its caller: a deadline on every call, jittered
// retries of idempotent calls, metrics per operation and status code, and
// typed errors. It is safe for concurrent use.
type HTTPClient struct {
	api *mgclient.MetalAPI
	// auth signs the calls that need each access level.
	auth    [accessAdmin + 1]runtime.ClientAuthInfoWriter
	timeout time.Duration
	retry   RetryConfig
}

// New validates cfg and returns a client.
func New(cfg Config) (*HTTPClient, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("metal-api url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("metal-api url %q: need http(s)://host[/base-path]", cfg.URL)
	}
	creds, err := cfg.credentials()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metal-api metrics: %w", err)
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	userAgent := cfg.UserAgent
	if userAgent == "" {
		userAgent = "palisade-metal-client"
	}
	var next http.RoundTripper
	if cfg.HTTPClient != nil {
		next = cfg.HTTPClient.Transport
	}
	if next == nil {
		next = http.DefaultTransport.(*http.Transport).Clone()
	}

	rt := httptransport.New(u.Host, strings.TrimSuffix(u.Path, "/"), []string{u.Scheme})
	rt.Transport = &instrumentedTransport{next: next, metrics: m, userAgent: userAgent}
	// go-openapi dumps whole requests, headers included, when DEBUG or
	// SWAGGER_DEBUG is set; a bearer token must never reach a log.
	rt.Debug = false

	c := &HTTPClient{
		api:     mgclient.New(rt, strfmt.Default),
		timeout: orDefault(cfg.Timeout, DefaultTimeout),
		retry:   cfg.Retry,
	}
	for level, cred := range creds {
		c.auth[level] = authWriter(cred.HMACKey, cred.HMACAuthType, cred.BearerToken, clk)
	}
	c.retry.MaxAttempts = orDefault(c.retry.MaxAttempts, DefaultMaxAttempts)
	c.retry.InitialBackoff = orDefault(c.retry.InitialBackoff, DefaultInitialBackoff)
	c.retry.MaxBackoff = orDefault(c.retry.MaxBackoff, DefaultMaxBackoff)
	c.retry.AttemptTimeout = orDefault(c.retry.AttemptTimeout, DefaultAttemptTimeout)
	return c, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// errNoResponse marks transport-level failures (no HTTP status received).
var errNoResponse = errors.New("no response from metal-api")

// credentials picks the credential for each access level: the purpose's
// own, else the next stronger purpose credential, else the default.
func (c Config) credentials() ([accessAdmin + 1]Credential, error) {
	var out [accessAdmin + 1]Credential
	byPurpose := [accessAdmin + 1]*Credential{c.View, c.Edit, c.Admin}
	ownType := [accessAdmin + 1]string{AuthTypeView, AuthTypeEdit, AuthTypeAdmin}
	def := Credential{HMACKey: c.HMACKey, HMACAuthType: c.authType(), BearerToken: c.BearerToken}
	if err := validAuthType(def); err != nil {
		return out, err
	}
	for level := accessView; level <= accessAdmin; level++ {
		out[level] = def
		for stronger := level; stronger <= accessAdmin; stronger++ {
			if p := byPurpose[stronger]; p.set() {
				cred := *p
				if cred.HMACAuthType == "" {
					cred.HMACAuthType = ownType[stronger]
				}
				if err := validAuthType(cred); err != nil {
					return out, err
				}
				out[level] = cred
				break
			}
		}
	}
	return out, nil
}

func validAuthType(c Credential) error {
	if c.HMACKey == "" {
		return nil
	}
	switch c.HMACAuthType {
	case AuthTypeView, AuthTypeEdit, AuthTypeAdmin:
		return nil
	}
	return fmt.Errorf("unknown hmac auth type %q", c.HMACAuthType)
}
