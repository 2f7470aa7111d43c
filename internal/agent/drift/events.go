package drift

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
)

// Event reasons.
const (
	EventDrifted = "RulesetDrifted"
	EventInSync  = "RulesetInSync"
)

// Events turns the checks into Kubernetes events on Object (the agent's FirewallMonitor in
// the workload cluster, where the agent may create events): a Warning when drift is found,
// a Normal one when the table holds the applied ruleset again. A drift that stays, or
// repeated checks in sync, make no more events.
type Events struct {
	Recorder record.EventRecorder
	Object   runtime.Object

	mu      sync.Mutex
	drifted bool
}

// Report records the event for st, if its outcome changed.
func (e *Events) Report(st Status) {
	if st.Err != nil || !st.Known {
		return
	}
	drifted := len(st.Differences) > 0
	e.mu.Lock()
	changed := drifted != e.drifted
	e.drifted = drifted
	e.mu.Unlock()
	if !changed {
		return
	}
	c := Condition(st)
	if drifted {
		e.Recorder.Event(e.Object, corev1.EventTypeWarning, EventDrifted, c.Message)
	} else {
		e.Recorder.Event(e.Object, corev1.EventTypeNormal, EventInSync, c.Message)
	}
}
