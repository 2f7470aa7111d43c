package ruleset

import "github.com/palisade-fw/palisade/internal/agent/model"

// PolicyCounter is the named counter (and chain) of a policy, so that readers of counters
// (metrics, status) can label them with the policy's name instead of the hashed name.
func PolicyCounter(key model.ObjectKey) string { return objectName("cwnp", key) }

// ServiceCounter is the named counter (and chain) of a service.
func ServiceCounter(key model.ObjectKey) string { return objectName("svc", key) }
