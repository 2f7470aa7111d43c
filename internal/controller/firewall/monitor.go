package firewall

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/workload"
)

// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewallmonitors,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=create

// Workload is what the controller needs of the workload cluster registry.
type Workload interface {
	For(ctx context.Context, fw *v2.Firewall) (*workload.Cluster, error)
}

// reconcileMonitor keeps the firewall's FirewallMonitor in the workload cluster in line, and
// reads back what the agent and the users wrote there, within the limits of monitortrust.go:
// the agent's report (for agents without seed access) and a roll request.
// refresh re-derives the conditions when the agent's report was taken from the monitor.
func (r *Reconciler) reconcileMonitor(ctx context.Context, fw *v2.Firewall, refresh func()) error {
	if r.Workload == nil {
		return nil
	}
	if fw.Status.MachineStatus == nil {
		r.setCondition(fw, v2.ConditionMonitorDeployed, false, v2.ReasonNotDeployed, "waiting for the machine")
		return nil
	}
	wc, err := r.Workload.For(ctx, fw)
	if err != nil {
		return r.monitorFailed(fw, err)
	}
	if err := ensureNamespace(ctx, wc); err != nil {
		return r.monitorFailed(fw, err)
	}

	key := client.ObjectKey{Namespace: wc.Namespace, Name: fw.Name}
	current := &v2.FirewallMonitor{}
	err = wc.Client.Get(ctx, key, current)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return r.monitorFailed(fw, err)
	}
	if exists {
		if owner := current.Labels[v2.MonitorSeedNamespaceLabel]; owner != fw.Namespace {
			r.setCondition(fw, v2.ConditionMonitorDeployed, false, "NameTaken",
				fmt.Sprintf("FirewallMonitor %s/%s in the workload cluster belongs to namespace %q", wc.Namespace, fw.Name, owner))
			return nil
		}
		if r.adoptMonitorReport(ctx, fw, current) {
			refresh()
		}
		if v2.IsTrue(current.Annotations, v2.RollSetAnnotation) {
			if err := r.requestRoll(ctx, fw); err != nil {
				return err
			}
		}
	}

	desired := current.DeepCopy()
	desired.Namespace, desired.Name = key.Namespace, key.Name
	fillMonitor(desired, fw)
	switch {
	case !exists:
		err = wc.Client.Create(ctx, desired)
		if apierrors.IsNotFound(err) { // the namespace went away since we looked
			wc.ForgetNamespace()
		}
	default:
		// A merge patch of what changed only: the agent's controllerStatus is left alone. The
		// comparison is on the serialized form: in-memory timestamps are finer than stored ones.
		patch := client.MergeFrom(current)
		if data, perr := patch.Data(desired); perr != nil || string(data) != "{}" {
			err = wc.Client.Patch(ctx, desired, patch)
		}
	}
	if err != nil {
		return r.monitorFailed(fw, fmt.Errorf("writing FirewallMonitor %s/%s: %w", key.Namespace, key.Name, err))
	}
	r.setCondition(fw, v2.ConditionMonitorDeployed, true, v2.ReasonDeployed,
		fmt.Sprintf("FirewallMonitor %s/%s is in the workload cluster", key.Namespace, key.Name))
	return nil
}

// monitorFailed reports a workload cluster problem. An unavailable cluster is a state, not an
// error: the firewall keeps working and the next poll tries again.
func (r *Reconciler) monitorFailed(fw *v2.Firewall, err error) error {
	var ue *workload.UnavailableError
	if errors.As(err, &ue) {
		r.setCondition(fw, v2.ConditionMonitorDeployed, false, ue.Reason, ue.Message)
		return nil
	}
	r.setCondition(fw, v2.ConditionMonitorDeployed, false, v2.ReasonNotDeployed, err.Error())
	return err
}

func ensureNamespace(ctx context.Context, wc *workload.Cluster) error {
	if wc.NamespaceEnsured() {
		return nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: wc.Namespace}}
	if err := wc.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		wc.ForgetNamespace()
		return fmt.Errorf("creating namespace %q in the workload cluster: %w", wc.Namespace, err)
	}
	return nil
}

// fillMonitor writes the manager's part of a monitor: what the firewall is and how it is.
func fillMonitor(mon *v2.FirewallMonitor, fw *v2.Firewall) {
	if mon.Labels == nil {
		mon.Labels = map[string]string{}
	}
	mon.Labels[v2.MonitorSeedNamespaceLabel] = fw.Namespace
	mon.Labels[v2.MonitorManagedByLabel] = v2.ManagedByValue
	mon.Size, mon.Image = fw.Spec.Size, fw.Spec.Image
	mon.Partition, mon.Project = fw.Spec.Partition, fw.Spec.Project
	mon.Networks = fw.Spec.Networks
	mon.RateLimits, mon.EgressRules = fw.Spec.RateLimits, fw.Spec.EgressRules
	mon.LogAcceptedConnections = fw.Spec.LogAcceptedConnections
	mon.MachineStatus = fw.Status.MachineStatus.DeepCopy()
	mon.Conditions = monitorConditions(fw)
	if v2.IsTrue(mon.Annotations, v2.RollSetAnnotation) {
		delete(mon.Annotations, v2.RollSetAnnotation) // handed to the set (requestRoll)
	}
}

// monitorConditions copies the firewall's conditions without the monitor's own, whose status
// would always be one write behind, and without seed-side messages (tenantCondition).
func monitorConditions(fw *v2.Firewall) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(fw.Status.Conditions))
	for _, c := range fw.Status.Conditions {
		if c.Type != v2.ConditionMonitorDeployed {
			out = append(out, tenantCondition(c))
		}
	}
	return out
}

// adoptMonitorReport takes the agent's report from the monitor when decideMonitorReport allows
// it: an agent without seed access (Cluster API, metal source) reports only there.
func (r *Reconciler) adoptMonitorReport(ctx context.Context, fw *v2.Firewall, mon *v2.FirewallMonitor) bool {
	ms, cs := mon.ControllerStatus, fw.Status.ControllerStatus
	recorded, known := r.trust.adoptedReport(fw.UID)
	fromMonitor := reportFromMonitor(cs, ms, recorded, known)
	switch decideMonitorReport(cs, ms, fromMonitor, r.Now(), r.Config.ConnectedThreshold) {
	case ignoreReport:
		if fromMonitor && !known {
			r.trust.recordAdopted(fw.UID, cs.Updated)
		}
		return false
	case refuseFutureReport:
		logf.FromContext(ctx).Info("Ignoring the agent report in the FirewallMonitor: its time lies in the future", "lastRun", ms.Updated, "lastRunAgainstSeed", ms.SeedUpdated)
		r.event(fw, corev1.EventTypeWarning, "MonitorReportRefused", "ReadReport", "The agent report in the FirewallMonitor lies in the future; it is ignored")
		return false
	}
	next := &v2.ControllerConnection{
		ActualVersion:      ms.ControllerVersion,
		Updated:            ms.Updated,
		SeedUpdated:        ms.SeedUpdated,
		ActualDistance:     ms.Distance,
		ObservedGeneration: ms.ObservedGeneration,
		RulesApplied:       ms.RulesApplied,
		Message:            ms.Message,
		Stats:              ms.Stats,
		Conditions:         ms.Conditions,
		DistanceSupported:  &ms.DistanceSupported,
	}
	if cs != nil && cs.SeedUpdated.After(next.SeedUpdated.Time) {
		next.SeedUpdated = cs.SeedUpdated // the seed knows best when the agent last read it
	}
	fw.Status.ControllerStatus = next
	r.trust.recordAdopted(fw.UID, next.Updated)
	return true
}

// requestRoll hands a roll request from the monitor to the firewall's set, where the deployment
// controller acts on it; fillMonitor then removes it from the monitor.
func (r *Reconciler) requestRoll(ctx context.Context, fw *v2.Firewall) error {
	owner := metav1.GetControllerOf(fw)
	if owner == nil || owner.Kind != "FirewallSet" {
		return nil // a standalone firewall has nothing to roll
	}
	set := &v2.FirewallSet{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: fw.Namespace, Name: owner.Name}, set); err != nil {
		return client.IgnoreNotFound(err)
	}
	// Every roll allocates machines: the tenant may ask for one per interval and firewall.
	if ok, wait := r.trust.allowRoll(fw.UID, r.Now(), r.monitorRollInterval()); !ok {
		r.event(fw, corev1.EventTypeWarning, "RollRequestRateLimited", "Roll",
			"Roll request through the FirewallMonitor ignored: the last one was less than %s ago (next possible in %s)", r.monitorRollInterval(), wait.Round(time.Second))
		return nil
	}
	if v2.IsTrue(set.Annotations, v2.RollSetAnnotation) {
		return nil
	}
	patch := client.MergeFrom(set.DeepCopy())
	metav1.SetMetaDataAnnotation(&set.ObjectMeta, v2.RollSetAnnotation, "true")
	if err := r.Client.Patch(ctx, set, patch); err != nil {
		return fmt.Errorf("passing the monitor's roll request to set %s: %w", set.Name, err)
	}
	logf.FromContext(ctx).Info("Roll requested through the FirewallMonitor", "set", set.Name)
	r.event(fw, corev1.EventTypeNormal, "RollRequested", "Roll", "Roll of set %s requested through the FirewallMonitor", set.Name)
	return nil
}

// monitorRollInterval is Config.MonitorRollInterval, DefaultMonitorRollInterval when unset.
func (r *Reconciler) monitorRollInterval() time.Duration {
	if r.Config.MonitorRollInterval > 0 {
		return r.Config.MonitorRollInterval
	}
	return DefaultMonitorRollInterval
}

// deleteMonitor removes the firewall's monitor. A workload cluster that is gone or unreachable
// does not hold up the deletion: its monitors went with it, or are orphaned and say so.
func (r *Reconciler) deleteMonitor(ctx context.Context, fw *v2.Firewall) error {
	r.trust.forget(fw.UID)
	// Not gated on the MonitorDeployed condition: a monitor may have been written by a pass
	// whose status patch then lost a conflict to the deletion, so the condition never arrived.
	if r.Workload == nil {
		return nil
	}
	wc, err := r.Workload.For(ctx, fw)
	if err != nil {
		logf.FromContext(ctx).Info("Not deleting the FirewallMonitor: the workload cluster is not available", "reason", err.Error())
		return nil
	}
	mon := &v2.FirewallMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: wc.Namespace, Name: fw.Name}}
	// Read past the cache: a monitor written just before the firewall was deleted may not be in
	// it yet, and a cached "not found" would leave it behind for good.
	reader := client.Reader(wc.Client)
	if wc.APIReader != nil {
		reader = wc.APIReader
	}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(mon), mon); err != nil {
		return client.IgnoreNotFound(err)
	}
	if mon.Labels[v2.MonitorSeedNamespaceLabel] != fw.Namespace {
		return nil
	}
	if err := wc.Client.Delete(ctx, mon); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting FirewallMonitor %s/%s: %w", mon.Namespace, mon.Name, err)
	}
	return nil
}
