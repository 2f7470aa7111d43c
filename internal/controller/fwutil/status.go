package fwutil

import (
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// StatusRecheck is how soon a pass that wrote an object's status looks again. Status-only
// updates of deployments and sets trigger no reconcile (generation predicate), and the next
// pass may read the object from a cache that does not hold this write yet: it compares its
// result with the stale status, finds nothing to write, and what this pass wrote (say,
// Progressing FirewallSetUpdated) stays although the rollout completed. One look after the
// write has reached the cache settles it; a look that writes nothing schedules no other.
const StatusRecheck = 2 * time.Second

// RecheckAfterStatusWrite is result of a pass that wrote the status: it looks again within
// StatusRecheck.
func RecheckAfterStatusWrite(result ctrl.Result) ctrl.Result {
	if result.RequeueAfter <= 0 || result.RequeueAfter > StatusRecheck {
		result.RequeueAfter = StatusRecheck
	}
	return result
}
