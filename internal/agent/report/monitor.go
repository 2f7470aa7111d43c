package report

import (
	"context"
	"encoding/json"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// Monitor writes controllerStatus of the FirewallMonitor in the workload cluster. The
// manager creates the monitor and owns everything else in it; the agent replaces only
// controllerStatus (a JSON patch "add" of that one member, so counters of deleted objects
// disappear instead of being merged forever).
type Monitor struct {
	Client    client.Client
	Namespace string // default "firewall"
	Name      string
	// Stats collects device and rule statistics; nil reports none.
	Stats func(ctx context.Context) (*v2.FirewallStats, error)
	Log   interface{ Debug(string, ...any) }

	mu          sync.Mutex
	lastContent string
	written     bool
	stats       *v2.FirewallStats // last collected, sent again with content-only writes
	// previousGeneration is the observedGeneration the monitor held when the agent started;
	// it stays until this agent has applied a generation itself (the replacing patch would
	// otherwise drop it after a restart whose first apply fails).
	previousGeneration *int64
}

// Target implements Sink.
func (m *Monitor) Target() string { return "FirewallMonitor " + m.namespace() + "/" + m.Name }

func (m *Monitor) namespace() string {
	if m.Namespace == "" {
		return v2.FirewallShootNamespace
	}
	return m.Namespace
}

// Write implements Sink.
func (m *Monitor) Write(ctx context.Context, st State, due bool) error {
	cs := v2.ControllerStatus{
		Message:            st.FullMessage(),
		ControllerVersion:  st.Version,
		Distance:           v2.FirewallDistance(st.Distance),
		DistanceSupported:  st.DistanceSupported,
		ObservedGeneration: st.ObservedGeneration,
		RulesApplied:       &st.RulesApplied,
		Conditions:         st.Conditions,
	}
	contentBytes, _ := json.Marshal(cs)
	content := string(contentBytes)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.written && content == m.lastContent && !due {
		return nil
	}
	if cs.ObservedGeneration == 0 {
		if m.previousGeneration == nil {
			var old v2.FirewallMonitor
			err := m.Client.Get(ctx, client.ObjectKey{Namespace: m.namespace(), Name: m.Name}, &old)
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			var gen int64
			if old.ControllerStatus != nil {
				gen = old.ControllerStatus.ObservedGeneration
			}
			m.previousGeneration = &gen
		}
		cs.ObservedGeneration = *m.previousGeneration
	}
	if (due || m.stats == nil) && m.Stats != nil {
		stats, err := m.Stats(ctx)
		if err != nil {
			return err
		}
		m.stats = stats
	}
	cs.Stats = m.stats
	if !st.LastRun.IsZero() {
		cs.Updated = timestamp(st.LastRun)
	}
	if !st.LastRunAgainstSeed.IsZero() {
		cs.SeedUpdated = timestamp(st.LastRunAgainstSeed)
	}
	patch, err := json.Marshal([]map[string]any{{"op": "add", "path": "/controllerStatus", "value": cs}})
	if err != nil {
		return err
	}
	mon := &v2.FirewallMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: m.namespace(), Name: m.Name}}
	if err := m.Client.Patch(ctx, mon, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			// The manager has not created it yet; the next report tries again.
			if m.Log != nil {
				m.Log.Debug("FirewallMonitor does not exist yet", "name", m.Name)
			}
			return nil
		}
		return err
	}
	m.lastContent, m.written = content, true
	return nil
}
