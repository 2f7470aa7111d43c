package firewall

import (
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// The FirewallMonitor lives in the workload cluster, where the tenant can write it. What the
// manager takes from it is therefore limited (docs/security.md):
//   - the agent's report only while the agent has not reported to the seed itself, and never
//     with a timestamp in the future;
//   - a roll request at most once per MonitorRollInterval per firewall;
//   - the conditions copied into it carry no seed-side messages (metal-api errors, Secret names).

// maxClockSkew is how far a monitor report may lie in the future (the agent's clock against the
// manager's) before it is refused as forged.
const maxClockSkew = time.Minute

// DefaultMonitorRollInterval is the least time between two roll requests through the monitor
// of one firewall.
const DefaultMonitorRollInterval = 10 * time.Minute

// monitorTrust remembers, per firewall, which report the manager took from the monitor and when
// it last honoured a roll request from there. It lives in memory: after a restart a report of
// unknown origin counts as the seed's until it is stale or equals the monitor's (see
// reportFromMonitor), and one roll request may pass early (the deployment's safety backoff
// still applies).
type monitorTrust struct {
	mu      sync.Mutex
	adopted map[types.UID]metav1.Time
	rolled  map[types.UID]time.Time
}

func (m *monitorTrust) adoptedReport(uid types.UID) (metav1.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.adopted[uid]
	return t, ok
}

func (m *monitorTrust) recordAdopted(uid types.UID, updated metav1.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.adopted == nil {
		m.adopted = map[types.UID]metav1.Time{}
	}
	m.adopted[uid] = updated
}

// allowRoll reports whether a roll request of the firewall may pass now, and records it if so.
func (m *monitorTrust) allowRoll(uid types.UID, now time.Time, interval time.Duration) (bool, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if last, ok := m.rolled[uid]; ok && now.Sub(last) < interval {
		return false, interval - now.Sub(last)
	}
	if m.rolled == nil {
		m.rolled = map[types.UID]time.Time{}
	}
	m.rolled[uid] = now
	return true, 0
}

func (m *monitorTrust) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.adopted, uid)
	delete(m.rolled, uid)
}

// reportDecision is what to do with the agent's report found in the monitor.
type reportDecision int

const (
	ignoreReport reportDecision = iota
	adoptReport
	refuseFutureReport
)

// decideMonitorReport decides whether the monitor's report replaces the firewall's.
// fromMonitor says the firewall's current report is one the manager took from the monitor
// before (nil report: nothing to protect). staleAfter is the Connected threshold.
func decideMonitorReport(current *v2.ControllerConnection, mon *v2.ControllerStatus, fromMonitor bool, now time.Time, staleAfter time.Duration) reportDecision {
	if mon == nil || mon.Updated.IsZero() {
		return ignoreReport
	}
	limit := now.Add(maxClockSkew)
	if mon.Updated.After(limit) || mon.SeedUpdated.After(limit) {
		return refuseFutureReport
	}
	if current == nil {
		return adoptReport
	}
	if !mon.Updated.After(current.Updated.Time) {
		return ignoreReport
	}
	// The seed's own report wins while it is fresh: the agent reaches the seed, and what the
	// tenant writes into the monitor must not override it.
	if !fromMonitor && now.Sub(current.Updated.Time) <= staleAfter {
		return ignoreReport
	}
	return adoptReport
}

// reportFromMonitor says whether the firewall's current report came from the monitor: the
// manager recorded adopting exactly this report, or (after a restart, nothing recorded) it
// equals the monitor's.
func reportFromMonitor(current *v2.ControllerConnection, mon *v2.ControllerStatus, recorded metav1.Time, known bool) bool {
	if current == nil {
		return false
	}
	if known {
		return current.Updated.Equal(&recorded)
	}
	return mon != nil && current.Updated.Equal(&mon.Updated)
}

// agentConditions are derived from the agent's own report: their messages say nothing the
// tenant's agent did not say itself.
var agentConditions = map[string]bool{
	v2.ConditionConnected:     true,
	v2.ConditionSeedConnected: true,
	v2.ConditionDistance:      true,
}

// tenantCondition is a seed-side condition as the workload cluster may see it: type, status,
// reason and time, and a message only for conditions derived from the agent's report.
func tenantCondition(c metav1.Condition) metav1.Condition {
	if !agentConditions[c.Type] {
		c.Message = "reported by the seed: " + c.Reason
	}
	return c
}
