package metalsim_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

type env struct {
	t     *testing.T
	sim   *metalsim.Simulator
	cfg   metalsim.Config
	clock *clocktesting.FakeClock
	edit  *metal.HTTPClient
	admin *metal.HTTPClient
}

func newEnv(t *testing.T, mutate ...func(*metalsim.Config)) *env {
	t.Helper()
	cfg := metalsim.DefaultConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	clk := clocktesting.NewFakeClock(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	sim := metalsim.New(cfg, metalsim.WithClock(clk))
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	mk := func(authType string) *metal.HTTPClient {
		c, err := metal.New(metal.Config{URL: srv.URL, HMACKey: cfg.HMACKeys[authType], HMACAuthType: authType, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return &env{t: t, sim: sim, cfg: cfg, clock: clk, edit: mk(metal.AuthTypeEdit), admin: mk(metal.AuthTypeAdmin)}
}

func (e *env) advance(d time.Duration) {
	e.t.Helper()
	if err := e.sim.Advance(d); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) allocate(name string) *metal.FirewallResponse {
	e.t.Helper()
	fw, err := e.edit.AllocateFirewall(context.Background(), firewallRequest(name))
	if err != nil {
		e.t.Fatal(err)
	}
	return fw
}

// get reads the firewall over HTTP, as a controller would.
func (e *env) get(id string) *metal.FirewallResponse {
	e.t.Helper()
	fw, err := e.edit.GetMachine(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return fw
}

func lastEvent(m *metal.MachineResponse) string {
	if len(m.Events.Log) == 0 {
		return ""
	}
	return m.Events.Log[0].Event
}

func firewallRequest(name string) *metal.FirewallCreateRequest {
	return &metal.FirewallCreateRequest{
		Name: name, Hostname: name,
		ProjectID: metalsim.DefaultProject, PartitionID: metalsim.DefaultPartition,
		SizeID: metalsim.DefaultSize, ImageID: metalsim.DefaultImageShorthand,
		Tags: []string{"cluster.metal-stack.io/id=c1"},
		Networks: []metal.MachineAllocationNetwork{
			{NetworkID: metalsim.DefaultExternalNetwork},
			{NetworkID: metalsim.DefaultPrivateNetwork},
		},
	}
}
