package v2

// Annotations understood by Palisade. The upstream keys are kept verbatim for compatibility.
const (
	// ReconcileAnnotation asks for one extra reconcile; the controller removes it.
	ReconcileAnnotation = "firewall.metal-stack.io/reconcile"
	// MaintenanceAnnotation marks a reconcile inside the maintenance window (OS auto-update).
	MaintenanceAnnotation = "firewall.metal-stack.io/maintain"
	// RollSetAnnotation set to "true" on the latest FirewallSet, on a FirewallDeployment or on a
	// FirewallMonitor requests a new FirewallSet (a roll) without a spec change.
	RollSetAnnotation = "firewall.metal-stack.io/roll-set"
	// RevisionAnnotation holds the integer revision of a FirewallSet.
	RevisionAnnotation = "firewall.metal-stack.io/revision"
	// NoControllerConnectionAnnotation set to "true" makes readiness ignore the agent connection.
	// On a FirewallDeployment it is inherited by its sets and firewalls.
	NoControllerConnectionAnnotation = "firewall.metal-stack.io/no-controller-connection"
	// WeightAnnotation is an int32 that ranks firewalls for scale-down and distance (higher is kept).
	WeightAnnotation = "firewall.metal-stack.io/weight"
	// RestartSystemdServicesAnnotation lists systemd services the agent restarts (comma-separated).
	RestartSystemdServicesAnnotation = "firewall.metal-stack.io/restart-systemd-services"
	// RestartSystemdServicesWhitelistAnnotation overrides the agent's list of restartable services.
	RestartSystemdServicesWhitelistAnnotation = "firewall.metal-stack.io/restart-systemd-services-whitelist"
	// PausedAnnotation stops every write to metal-api and every change to children while present
	// (any value but "false"). Cluster API sets it during clusterctl move.
	PausedAnnotation = "firewall.metal-stack.io/paused"
	// ClusterAPIPausedAnnotation is Cluster API's own pause marker; it has the same effect.
	ClusterAPIPausedAnnotation = "cluster.x-k8s.io/paused"
	// ClusterctlDeleteForMoveAnnotation is set by clusterctl move on each source object right
	// before deleting it; it has the same effect as a pause, so that a moved firewall's machine is
	// not freed and no new set is created. clusterctl's patch replaces all annotations, so the
	// pause annotations are gone at that moment and this one is what says "handed over".
	ClusterctlDeleteForMoveAnnotation = "clusterctl.cluster.x-k8s.io/delete-for-move"
	// WorkloadKubeconfigAnnotation names the Secret, in the object's namespace, holding the
	// kubeconfig of the workload cluster that receives the FirewallMonitors: "<name>" (key
	// "value", as Cluster API writes it) or "<name>/<key>". On a FirewallDeployment it is
	// inherited by its sets and firewalls. Without it the manager's --workload-kubeconfig-secret
	// applies, and without that the manager's own cluster is the workload cluster.
	WorkloadKubeconfigAnnotation = "firewall.metal-stack.io/workload-kubeconfig"
	// UserdataHashAnnotation records the hash of the rendered userdata a FirewallSet was created for.
	UserdataHashAnnotation = "firewall.metal-stack.io/userdata-hash"
	// PromotedAnnotation on a FirewallSet marks that it carried its deployment's traffic (it was
	// ready at the shortest distance). Only promoted sets are kept as revision history.
	PromotedAnnotation = "firewall.metal-stack.io/promoted"
	// RollbackToRevisionAnnotation on a FirewallDeployment ("<revision>") asks to roll back to
	// the template of the set with that revision: the controller copies the set's template into
	// the spec and removes the annotation; the history set is then scaled up again instead of a
	// new one created. Writing an old template into the spec by hand has the same effect.
	RollbackToRevisionAnnotation = "firewall.metal-stack.io/rollback-to-revision"
	// TargetSinceAnnotation on a FirewallSet (RFC 3339) records when a set that existed already
	// became its deployment's target again (a rollback, or a change reverted during a roll): the
	// progress deadline and the rollout duration count from then, not from its creation.
	TargetSinceAnnotation = "firewall.metal-stack.io/target-since"
)

// Tags written to metal-api machines. The set tag keeps upstream's historic spelling
// ("metal.stack.io") so that machines allocated by the upstream manager are found and adopted.
const (
	ClusterIDTag = "cluster.metal-stack.io/id"
	ManagedByTag = "firewall.metal-stack.io/managed-by"
	SetTag       = "firewall.metal.stack.io/set"
	// NamespaceTag is a Palisade addition: it keeps same-named firewalls of different namespaces apart.
	NamespaceTag = "firewall.metal-stack.io/namespace"
	// ManagedByValue is the value of ManagedByTag. Upstream's value is kept so upstream machines are adopted.
	ManagedByValue = "firewall-controller-manager"
)

// Finalizers: one per controller, so that no controller can release another's object.
const (
	FirewallFinalizer           = "firewall.metal-stack.io/firewall"
	FirewallSetFinalizer        = "firewall.metal-stack.io/firewallset"
	FirewallDeploymentFinalizer = "firewall.metal-stack.io/firewalldeployment"
	FirewallMonitorFinalizer    = "firewall.metal-stack.io/firewallmonitor"
	// UpstreamFinalizer is the shared finalizer of the upstream manager. Gardener's extension writes
	// it on the FirewallDeployment it creates; Palisade releases it with its own once the object's
	// cleanup is done (internal/controller/fwutil ReleaseFinalizers).
	UpstreamFinalizer = "firewall.metal-stack.io/firewall-controller-manager"
)

// InheritedAnnotations are copied from a FirewallDeployment to its sets and from a set to its
// firewalls while the parent carries them.
var InheritedAnnotations = []string{NoControllerConnectionAnnotation, WorkloadKubeconfigAnnotation}

// CopyInherited copies the InheritedAnnotations present in from into *to, allocating it when needed.
func CopyInherited(from map[string]string, to *map[string]string) {
	for _, key := range InheritedAnnotations {
		if v, ok := from[key]; ok {
			if *to == nil {
				*to = map[string]string{}
			}
			(*to)[key] = v
		}
	}
}

// GardenerShootNamespaceLabel marks the FirewallDeployment Gardener's extension (GEPM) writes
// into a shoot's own seed namespace; its firewalls run the upstream firewall-controller.
const GardenerShootNamespaceLabel = "gardener-shoot-namespace"

// SyncInherited makes the InheritedAnnotations of *to follow from both ways: added or changed
// where from has them, removed where from has not. It reports whether *to changed.
func SyncInherited(from map[string]string, to *map[string]string) bool {
	changed := false
	for _, key := range InheritedAnnotations {
		v, ok := from[key]
		cur, has := (*to)[key]
		switch {
		case ok && (!has || cur != v):
			if *to == nil {
				*to = map[string]string{}
			}
			(*to)[key] = v
			changed = true
		case !ok && has:
			delete(*to, key)
			changed = true
		}
	}
	return changed
}

// Labels on the FirewallMonitors the manager writes into a workload cluster.
const (
	// MonitorSeedNamespaceLabel is the namespace of the monitor's Firewall in the seed.
	MonitorSeedNamespaceLabel = "firewall.metal-stack.io/seed-namespace"
	// MonitorManagedByLabel marks monitors written by the manager (value ManagedByValue).
	MonitorManagedByLabel = "app.kubernetes.io/managed-by"
)

// IsTrue reports whether an annotation is present with a value that means true ("true", "1", "yes").
func IsTrue(annotations map[string]string, key string) bool {
	v, ok := annotations[key]
	if !ok {
		return false
	}
	switch v {
	case "true", "True", "TRUE", "1", "yes":
		return true
	}
	return false
}

// IsPaused reports whether an object carries Palisade's or Cluster API's pause annotation, or
// clusterctl's delete-for-move annotation. Any value except "false" pauses, as Cluster API
// treats the mere presence as paused.
func IsPaused(annotations map[string]string) bool {
	for _, key := range []string{PausedAnnotation, ClusterAPIPausedAnnotation, ClusterctlDeleteForMoveAnnotation} {
		if v, ok := annotations[key]; ok && v != "false" {
			return true
		}
	}
	return false
}

// KubeconfigTokenSecretExtension is the context extension of a generated agent kubeconfig that
// names the Secret it is kept in (value: KubeconfigTokenSecret as JSON). The agent reads that
// Secret with the kubeconfig's own token before the token expires and switches to the rotated
// one, so a long-running firewall never loses its access.
const KubeconfigTokenSecretExtension = "firewall.metal-stack.io/token-secret"

// KubeconfigTokenSecret is the value of KubeconfigTokenSecretExtension.
type KubeconfigTokenSecret struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}
