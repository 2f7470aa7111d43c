package agent

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/drift"
	"github.com/palisade-fw/palisade/internal/agent/source/kube"
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
	var reports []func(drift.Status)
	if a.hub != nil {
		reports = append(reports, func(st drift.Status) { a.hub.SetCondition(drift.Condition(st)) })
	}
	if ev := a.driftEvents(); ev != nil {
		reports = append(reports, ev.Report)
	}
	opts.Report = func(st drift.Status) {
		for _, r := range reports {
			r(st)
		}
	}
	a.drift = drift.New(opts)
	a.runner.AddObserver(a.drift)
}

// driftEvents puts drift events on the agent's FirewallMonitor in the workload cluster, where
// the agent may create events (it creates none in the seed); nil without controllers.monitor.
func (a *Agent) driftEvents() *drift.Events {
	if a.cfg.Controllers.Monitor == nil || a.cfg.Sources.Shoot == nil {
		return nil
	}
	cfg, err := kube.RestConfig(a.cfg.Sources.Shoot.Kubeconfig)
	if err != nil {
		a.log.Warn("no drift events: the workload cluster's kubeconfig", "err", err)
		return nil
	}
	rec := kube.NewRecorder(cfg, a.cfg.Name, a.log)
	if rec == nil {
		return nil
	}
	mon := &v2.FirewallMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: v2.FirewallShootNamespace, Name: a.cfg.Name}}
	return &drift.Events{Recorder: rec, Object: mon}
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
