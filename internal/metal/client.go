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

// Config configures an HTTPClient. Exactly one of HMACKey and BearerToken is
// normally set; HMACKey wins when both are.
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
	auth := "none"
	switch {
	case c.HMACKey != "":
		auth = "hmac(" + c.authType() + ")"
	case c.BearerToken != "":
		auth = "bearer"
	}
	return fmt.Sprintf("metal.Config{URL:%q, Auth:%s, Timeout:%s}", c.URL, auth, c.Timeout)
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
	api     *mgclient.MetalAPI
	auth    runtime.ClientAuthInfoWriter
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
	switch cfg.authType() {
	case AuthTypeView, AuthTypeEdit, AuthTypeAdmin:
	default:
		return nil, fmt.Errorf("unknown hmac auth type %q", cfg.HMACAuthType)
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
		auth:    authWriter(cfg.HMACKey, cfg.authType(), cfg.BearerToken, clk),
		timeout: orDefault(cfg.Timeout, DefaultTimeout),
		retry:   cfg.Retry,
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
