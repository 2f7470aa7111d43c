package agent

import (
	"context"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/drift"
)

// wireDrift sets up the drift check (internal/agent/drift) on the real kernel: the table is
// compared with the applied ruleset every nftables.driftCheckInterval and after nftables
// notifications of other processes; drift is repaired by a full re-apply through the
// runner unless nftables.repairDrift is false. The outcome is the RulesetInSync condition
// of the status reports and the palisade_agent_ruleset_drift_* metrics.
func (a *Agent) wireDrift() {
	if a.netlink == nil {
		return // a fake kernel lists no rules
	}
	repair := a.cfg.Nftables.RepairDriftEnabled()
	opts := drift.Options{
		Source:     a.applier,
		Interval:   config.Duration(a.cfg.Nftables.DriftCheckInterval),
		Registerer: a.x.registry,
		Log:        a.log.With("controller", "drift"),
	}
	if repair {
		opts.Repair = func() {
			// The applier forgets what it applied, so the runner's next sync is a full one
			// against what the kernel lists: named counters and learned FQDN elements stay.
			a.applier.Forget()
			a.runner.Notify()
		}
	}
	if a.hub != nil {
		hub := a.hub
		opts.Report = func(st drift.Status) {
			if st.Checked.IsZero() {
				return
			}
			hub.SetCondition(drift.Condition(st))
		}
	}
	a.drift = drift.New(opts)
	a.runner.AddObserver(a.drift)
}

// runDrift runs the checks and the netlink subscription until ctx ends; a subscription
// that cannot be made leaves the scheduled checks.
func (a *Agent) runDrift(ctx context.Context) {
	if a.drift == nil {
		return
	}
	go func() { _ = a.drift.Run(ctx) }()
	go func() {
		for ctx.Err() == nil {
			err := a.netlink.Watch(ctx, a.drift.Notify)
			if err == nil {
				return
			}
			a.log.Warn("nftables notifications unavailable; drift is checked on the schedule only", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Minute):
			}
		}
	}()
}
