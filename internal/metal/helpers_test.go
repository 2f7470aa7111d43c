package metal_test

import (
	"net/http/httptest"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

// env is a simulator on a real loopback HTTP server plus a shared fake clock.
type env struct {
	t     *testing.T
	sim   *metalsim.Simulator
	cfg   metalsim.Config
	clock *clocktesting.FakeClock
	url   string
}

func newEnv(t *testing.T, mutate ...func(*metalsim.Config)) *env {
	t.Helper()
	cfg := metalsim.DefaultConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	sim := metalsim.New(cfg, metalsim.WithClock(clk))
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, sim: sim, cfg: cfg, clock: clk, url: srv.URL}
}

// client returns a client for an auth type, using the simulator's key and
// clock, with fast retries.
func (e *env) client(authType string, mutate ...func(*metal.Config)) *metal.HTTPClient {
	e.t.Helper()
	cfg := metal.Config{
		URL:          e.url,
		HMACKey:      e.cfg.HMACKeys[authType],
		HMACAuthType: authType,
		Clock:        e.clock,
		Timeout:      10 * time.Second,
		Retry:        metal.RetryConfig{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := metal.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) advance(d time.Duration) {
	e.t.Helper()
	if err := e.sim.Advance(d); err != nil {
		e.t.Fatal(err)
	}
}

const clusterTag = "cluster.metal-stack.io/id=cluster-1"

func firewallRequest(name string) *metal.FirewallCreateRequest {
	return &metal.FirewallCreateRequest{
		Name:        name,
		Hostname:    name,
		Description: "created by palisade tests",
		ProjectID:   metalsim.DefaultProject,
		PartitionID: metalsim.DefaultPartition,
		SizeID:      metalsim.DefaultSize,
		ImageID:     metalsim.DefaultImageShorthand,
		SSHPubKeys:  []string{metalsim.FakeSSHPublicKey(1, "test@palisade")},
		UserData:    `{"ignition":{"version":"3.4.0"}}`,
		Tags:        []string{clusterTag, "firewall.metal-stack.io/managed-by=palisade"},
		Networks: []metal.MachineAllocationNetwork{
			{NetworkID: metalsim.DefaultExternalNetwork},
			{NetworkID: metalsim.DefaultPrivateNetwork},
		},
	}
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
