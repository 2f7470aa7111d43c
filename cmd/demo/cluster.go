package main

import (
	"io"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
)

// simulatorConfig is metal-api with the built-in fleet, provisioning fast enough that the whole
// demo takes seconds while every lifecycle step (Installing, Phoned Home) stays visible.
func simulatorConfig() *metalsim.Config {
	cfg := metalsim.DefaultConfig()
	cfg.Provisioning.Installing = metalsim.Duration{Duration: 1500 * time.Millisecond}
	cfg.Provisioning.BootingNewKernel = metalsim.Duration{Duration: 1 * time.Second}
	cfg.Provisioning.ReclaimDelay = metalsim.Duration{Duration: 500 * time.Millisecond}
	cfg.Provisioning.ReclaimStep = metalsim.Duration{Duration: 250 * time.Millisecond}
	return &cfg
}

// newStack is the API server (with the admission webhooks), the simulator and the same
// controllers as cmd/manager, in process (internal/testenv/harness, shared with the end-to-end
// tests). The manager logs to logTo so that the live view stays readable.
func newStack(logTo io.Writer) *harness.Stack {
	log := zap.New(zap.WriteTo(logTo))
	ctrl.SetLogger(log)
	return harness.New(harness.Options{
		Webhooks:  true,
		Simulator: simulatorConfig(),
		Logger:    log,
		Manager:   func(o *manager.Options) { o.Firewall.CreatingPoll = 250 * time.Millisecond },
	})
}
