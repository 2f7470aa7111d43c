package firewalldeployment

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/firewall"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/userdata"
)

// UserdataHashAnnotation records the userdata hash a set was created for.
const UserdataHashAnnotation = v2.UserdataHashAnnotation

// rollout provisions the agent's access, then rolls the sets. The agent kubeconfig comes first
// because the userdata embeds it: rendering before it exists would report it missing.
func (r *Reconciler) rollout(ctx context.Context, deploy *v2.FirewallDeployment, sets []*v2.FirewallSet) (ctrl.Result, error) {
	refresh, err := r.ensureAgentAccess(ctx, deploy)
	if err != nil {
		return ctrl.Result{}, err
	}
	result, err := r.rolloutSets(ctx, deploy, sets)
	// Come back in time to rotate the agent token, whatever the rollout asked for.
	if refresh > 0 && (result.RequeueAfter == 0 || refresh < result.RequeueAfter) && !result.Requeue {
		result.RequeueAfter = refresh
	}
	return result, err
}

// ensureAgentAccess runs the AgentAccess provisioner and reports it in the RBACProvisioned
// condition; deployments that generate no kubeconfig carry no such condition.
func (r *Reconciler) ensureAgentAccess(ctx context.Context, deploy *v2.FirewallDeployment) (time.Duration, error) {
	if r.AgentAccess == nil {
		return 0, nil
	}
	// Nothing generated now or before: skip the lookups (and the informers they would start).
	if len(userdata.GeneratedKubeconfigs(&deploy.Spec.Template.Spec)) == 0 &&
		meta.FindStatusCondition(deploy.Status.Conditions, v2.ConditionRBACProvisioned) == nil {
		return 0, nil
	}
	refresh, err := r.AgentAccess.Ensure(ctx, deploy)
	switch {
	case err != nil:
		setCondition(deploy, v2.ConditionRBACProvisioned, false, "ProvisioningFailed", err.Error())
		return 0, fmt.Errorf("provisioning the agent identity: %w", err)
	case refresh == 0:
		meta.RemoveStatusCondition(&deploy.Status.Conditions, v2.ConditionRBACProvisioned)
	default:
		setCondition(deploy, v2.ConditionRBACProvisioned, true, "Provisioned", "agent ServiceAccount, Role and kubeconfig Secrets are in place")
	}
	return refresh, nil
}

// rolloutSets decides between a new set and an in-place update, then drives the strategy.
func (r *Reconciler) rolloutSets(ctx context.Context, deploy *v2.FirewallDeployment, sets []*v2.FirewallSet) (ctrl.Result, error) {
	sortByRevision(sets)
	var latest *v2.FirewallSet
	if len(sets) > 0 {
		latest = sets[len(sets)-1]
	}

	rendered, userdataHash, err := r.Userdata.Render(ctx, deploy.Namespace, &deploy.Spec.Template.Spec)
	var ue *firewall.UserdataError
	switch {
	case errors.As(err, &ue):
		setCondition(deploy, v2.ConditionUserdataReady, false, ue.Reason, ue.Message)
		if latest == nil {
			return ctrl.Result{}, nil // wait: the Secret or ConfigMap watch brings us back
		}
		userdataHash = latest.Annotations[UserdataHashAnnotation] // do not roll on what we cannot read
	case err != nil:
		setCondition(deploy, v2.ConditionUserdataReady, false, "RenderError", err.Error())
		return ctrl.Result{}, err
	default:
		reason, message := userdataReady(rendered)
		setCondition(deploy, v2.ConditionUserdataReady, true, reason, message)
	}
	wantHash := fwutil.RolloutHash(&deploy.Spec.Template.Spec, userdataHash)

	if reason := newSetReason(deploy, latest, wantHash); reason != "" {
		if wait := r.backoff(deploy); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		return r.createSet(ctx, deploy, sets, latest, wantHash, userdataHash, reason)
	}

	if deploy.Spec.Strategy == v2.StrategyRecreate {
		return r.recreate(ctx, deploy, sets, latest)
	}
	return r.rollingUpdate(ctx, deploy, sets, latest)
}

// newSetReason says why the deployment needs a new set, or "" when the latest set will do.
func newSetReason(deploy *v2.FirewallDeployment, latest *v2.FirewallSet, wantHash string) string {
	switch {
	case latest == nil:
		return "no set yet"
	case v2.IsTrue(deploy.Annotations, v2.RollSetAnnotation):
		return "roll requested on the deployment"
	case v2.IsTrue(latest.Annotations, v2.RollSetAnnotation):
		return "roll requested on set " + latest.Name
	}
	have := latest.Annotations[fwutil.TemplateHashAnnotation]
	if have == "" {
		// A set created by the upstream manager: compare the fields that need new machines.
		have = fwutil.RolloutHash(&latest.Spec.Template.Spec, latest.Annotations[UserdataHashAnnotation])
		wantNoUserdata := fwutil.RolloutHash(&deploy.Spec.Template.Spec, latest.Annotations[UserdataHashAnnotation])
		if have == wantNoUserdata {
			return ""
		}
	}
	if have != wantHash {
		return "size, image, networks or userdata changed"
	}
	return ""
}

func (r *Reconciler) backoff(deploy *v2.FirewallDeployment) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	last, ok := r.lastCreated[string(deploy.UID)]
	if !ok || r.SafetyBackoff <= 0 {
		return 0
	}
	if wait := r.SafetyBackoff - r.Now().Sub(last); wait > 0 {
		return wait
	}
	return 0
}

func (r *Reconciler) createSet(ctx context.Context, deploy *v2.FirewallDeployment, sets []*v2.FirewallSet, latest *v2.FirewallSet, templateHash, userdataHash, reason string) (ctrl.Result, error) {
	revision := 0
	if latest != nil {
		revision = fwutil.Revision(latest) + 1
	}
	replicas, distance := deploy.Spec.Replicas, v2.FirewallShortestDistance
	if latest != nil {
		if deploy.Spec.Strategy == v2.StrategyRecreate {
			replicas = 0 // scaled up once the old sets are gone
		} else {
			distance = v2.FirewallRollingUpdateSetDistance // staged: draws no traffic until ready
		}
	}
	set := &v2.FirewallSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fwutil.NameWithSuffix(deploy.Name, fwutil.RandomSuffix(5)),
			Namespace: deploy.Namespace,
			Labels:    map[string]string{fwutil.DeploymentLabel: deploy.Name},
			Annotations: map[string]string{
				v2.RevisionAnnotation:         strconv.Itoa(revision),
				fwutil.TemplateHashAnnotation: templateHash,
				UserdataHashAnnotation:        userdataHash,
			},
		},
		Spec: v2.FirewallSetSpec{
			Replicas: replicas,
			Selector: maps.Clone(deploy.Spec.Selector),
			Template: *deploy.Spec.Template.DeepCopy(),
			Distance: distance,
		},
	}
	maps.Copy(set.Labels, deploy.Labels)
	if set.Spec.Template.ObjectMeta.Labels == nil {
		set.Spec.Template.ObjectMeta.Labels = map[string]string{}
	}
	set.Spec.Template.ObjectMeta.Labels[fwutil.DeploymentLabel] = deploy.Name
	if len(set.Spec.Selector) == 0 {
		set.Spec.Selector = maps.Clone(set.Spec.Template.ObjectMeta.Labels)
	}
	v2.CopyInherited(deploy.Annotations, &set.Annotations)
	if err := controllerutil.SetControllerReference(deploy, set, r.Client.Scheme()); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Client.Create(ctx, set); err != nil {
		setCondition(deploy, v2.ConditionProgressing, false, v2.ReasonFirewallSetCreateError, err.Error())
		r.event(deploy, corev1.EventTypeWarning, "FailedCreate", "CreateSet", "Creating a firewall set failed: %v", err)
		return ctrl.Result{}, fmt.Errorf("creating set: %w", err)
	}
	r.mu.Lock()
	r.lastCreated[string(deploy.UID)] = r.Now()
	r.mu.Unlock()

	logf.FromContext(ctx).Info("Created firewall set", "set", set.Name, "revision", revision, "reason", reason)
	r.event(deploy, corev1.EventTypeNormal, "SuccessfulCreate", "CreateSet", "Created set %s (revision %d): %s", set.Name, revision, reason)
	setCondition(deploy, v2.ConditionProgressing, true, v2.ReasonNewFirewallSetCreated, fmt.Sprintf("set %s created: %s", set.Name, reason))

	if v2.IsTrue(deploy.Annotations, v2.RollSetAnnotation) {
		original := deploy.DeepCopy()
		delete(deploy.Annotations, v2.RollSetAnnotation)
		if err := r.Client.Patch(ctx, deploy, client.MergeFrom(original)); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{Requeue: true}, nil
}

// rollingUpdate keeps the old sets until every firewall of the latest set is ready, then
// deletes them and moves the latest set to the shortest distance.
func (r *Reconciler) rollingUpdate(ctx context.Context, deploy *v2.FirewallDeployment, sets []*v2.FirewallSet, latest *v2.FirewallSet) (ctrl.Result, error) {
	if err := r.syncSet(ctx, deploy, latest, deploy.Spec.Replicas, latest.Spec.Distance); err != nil {
		return ctrl.Result{}, err
	}
	old := sets[:len(sets)-1]
	// During quick successive changes keep only the oldest set (it carries the traffic) and the
	// newest; sets in between never become ready and would only hold machines.
	for i := 1; i < len(old); i++ {
		if err := r.deleteSet(ctx, deploy, old[i], "superseded before it became ready"); err != nil {
			return ctrl.Result{}, err
		}
	}
	if !setReady(latest, deploy.Spec.Replicas) {
		return r.waitForSet(deploy, latest), nil
	}
	if err := r.retireOldSets(ctx, deploy, old); err != nil {
		return ctrl.Result{}, err
	}
	if remaining := countAlive(old); remaining > 0 {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	if latest.Spec.Distance != v2.FirewallShortestDistance {
		if err := r.syncSet(ctx, deploy, latest, deploy.Spec.Replicas, v2.FirewallShortestDistance); err != nil {
			return ctrl.Result{}, err
		}
		r.rolloutDone(deploy, latest)
	}
	setCondition(deploy, v2.ConditionProgressing, true, v2.ReasonNewFirewallSetAvailable, fmt.Sprintf("set %s is available", latest.Name))
	return ctrl.Result{}, nil
}

// recreate frees the old sets first and scales the latest set up once they are gone.
func (r *Reconciler) recreate(ctx context.Context, deploy *v2.FirewallDeployment, sets []*v2.FirewallSet, latest *v2.FirewallSet) (ctrl.Result, error) {
	old := sets[:len(sets)-1]
	if err := r.retireOldSets(ctx, deploy, old); err != nil {
		return ctrl.Result{}, err
	}
	if remaining := countAlive(old); remaining > 0 {
		if err := r.syncSet(ctx, deploy, latest, 0, v2.FirewallShortestDistance); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	wasScaledDown := latest.Spec.Replicas == 0 && deploy.Spec.Replicas > 0 && len(old) > 0
	if err := r.syncSet(ctx, deploy, latest, deploy.Spec.Replicas, v2.FirewallShortestDistance); err != nil {
		return ctrl.Result{}, err
	}
	if wasScaledDown {
		r.event(deploy, corev1.EventTypeNormal, "Recreate", "ScaleSet", "Old sets are gone, scaled set %s up", latest.Name)
	}
	if !setReady(latest, deploy.Spec.Replicas) {
		return r.waitForSet(deploy, latest), nil
	}
	setCondition(deploy, v2.ConditionProgressing, true, v2.ReasonNewFirewallSetAvailable, fmt.Sprintf("set %s is available", latest.Name))
	return ctrl.Result{}, nil
}

// retireOldSets deletes old sets, keeping up to revisionHistoryLimit of them scaled to zero.
func (r *Reconciler) retireOldSets(ctx context.Context, deploy *v2.FirewallDeployment, old []*v2.FirewallSet) error {
	keep := 0
	if deploy.Spec.RevisionHistoryLimit != nil {
		keep = int(*deploy.Spec.RevisionHistoryLimit)
	}
	for i := len(old) - 1; i >= 0; i-- {
		set := old[i]
		if !set.DeletionTimestamp.IsZero() {
			continue
		}
		if keep > 0 {
			keep--
			if err := r.syncSet(ctx, deploy, set, 0, set.Spec.Distance); err != nil {
				return err
			}
			continue
		}
		if err := r.deleteSet(ctx, deploy, set, "replaced by a newer set"); err != nil {
			return err
		}
	}
	return nil
}

// syncSet applies the deployment's template (in-place fields), replicas and distance to a set.
func (r *Reconciler) syncSet(ctx context.Context, deploy *v2.FirewallDeployment, set *v2.FirewallSet, replicas int, distance v2.FirewallDistance) error {
	want := set.DeepCopy()
	want.Spec.Replicas = replicas
	want.Spec.Distance = distance
	labels := want.Spec.Template.ObjectMeta.Labels
	want.Spec.Template = *deploy.Spec.Template.DeepCopy()
	want.Spec.Template.ObjectMeta.Labels = labels // keep the labels the selector was built from
	v2.CopyInherited(deploy.Annotations, &want.Annotations)
	if equality.Semantic.DeepEqual(want.Spec, set.Spec) && equality.Semantic.DeepEqual(want.Annotations, set.Annotations) {
		return nil
	}
	if err := r.Client.Patch(ctx, want, client.MergeFrom(set)); err != nil {
		return fmt.Errorf("updating set %s: %w", set.Name, err)
	}
	*set = *want
	return nil
}

func (r *Reconciler) deleteSet(ctx context.Context, deploy *v2.FirewallDeployment, set *v2.FirewallSet, why string) error {
	if !set.DeletionTimestamp.IsZero() {
		return nil
	}
	if err := r.Client.Delete(ctx, set); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting set %s: %w", set.Name, err)
	}
	r.event(deploy, corev1.EventTypeNormal, "SuccessfulDelete", "DeleteSet", "Deleted set %s: %s", set.Name, why)
	return nil
}

func (r *Reconciler) waitForProgress(deploy *v2.FirewallDeployment, latest *v2.FirewallSet) ctrl.Result {
	deadline := r.ProgressDeadline
	if deploy.Spec.ProgressDeadlineSeconds != nil {
		deadline = time.Duration(*deploy.Spec.ProgressDeadlineSeconds) * time.Second
	}
	msg := fmt.Sprintf("set %s has %d of %d firewalls ready", latest.Name, latest.Status.ReadyReplicas, deploy.Spec.Replicas)
	if deadline > 0 {
		if age := r.Now().Sub(latest.CreationTimestamp.Time); age > deadline {
			setCondition(deploy, v2.ConditionProgressing, false, v2.ReasonProgressDeadlineExceeded, fmt.Sprintf("%s after %s", msg, deadline))
			return ctrl.Result{}
		} else {
			setCondition(deploy, v2.ConditionProgressing, true, v2.ReasonFirewallSetUpdated, msg)
			return ctrl.Result{RequeueAfter: deadline - age}
		}
	}
	setCondition(deploy, v2.ConditionProgressing, true, v2.ReasonFirewallSetUpdated, msg)
	return ctrl.Result{}
}

// waitForSet waits for the latest set. When its firewalls are ready and only its status lags
// behind its spec (a distance or template patch just went out), it looks again shortly instead
// of relying on the set's next status event alone.
func (r *Reconciler) waitForSet(deploy *v2.FirewallDeployment, latest *v2.FirewallSet) ctrl.Result {
	result := r.waitForProgress(deploy, latest)
	if latest.Status.ReadyReplicas >= deploy.Spec.Replicas && (result.RequeueAfter == 0 || result.RequeueAfter > 2*time.Second) {
		result.RequeueAfter = 2 * time.Second
	}
	return result
}

func (r *Reconciler) rolloutDone(deploy *v2.FirewallDeployment, latest *v2.FirewallSet) {
	d := r.Now().Sub(latest.CreationTimestamp.Time)
	r.event(deploy, corev1.EventTypeNormal, "RolloutComplete", "Rollout", "Set %s carries the traffic after %s", latest.Name, d.Round(time.Second))
	if r.OnRolloutDone != nil {
		r.OnRolloutDone(deploy.Namespace, deploy.Name, d)
	}
}

// setReady is true when the set observed its current spec and has enough ready firewalls.
func setReady(set *v2.FirewallSet, replicas int) bool {
	return set.Status.ObservedGeneration == set.Generation && set.Spec.Replicas == replicas && set.Status.ReadyReplicas >= replicas
}

// countAlive counts old sets that still hold (or are freeing) firewalls; a set kept for the
// revision history at zero replicas does not count once it is empty.
func countAlive(sets []*v2.FirewallSet) int {
	n := 0
	for _, s := range sets {
		empty := s.Status.ReadyReplicas+s.Status.ProgressingReplicas+s.Status.UnhealthyReplicas == 0
		if s.DeletionTimestamp.IsZero() && s.Spec.Replicas == 0 && s.Status.ObservedGeneration == s.Generation && empty {
			continue
		}
		n++
	}
	return n
}

func sortByRevision(sets []*v2.FirewallSet) {
	sort.SliceStable(sets, func(i, j int) bool {
		ri, rj := fwutil.Revision(sets[i]), fwutil.Revision(sets[j])
		if ri != rj {
			return ri < rj
		}
		return sets[i].CreationTimestamp.Before(&sets[j].CreationTimestamp)
	})
}

func setCondition(deploy *v2.FirewallDeployment, condType string, status bool, reason, message string) {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&deploy.Status.Conditions, metav1.Condition{
		Type: condType, Status: s, Reason: reason, Message: message, ObservedGeneration: deploy.Generation,
	})
}
