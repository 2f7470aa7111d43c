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
	"k8s.io/apimachinery/pkg/types"
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

	fws, err := r.firewallsBySet(ctx, deploy)
	if err != nil {
		return ctrl.Result{}, err
	}
	in := PlanInput{
		Strategy: deploy.Spec.Strategy,
		Replicas: deploy.Spec.Replicas,
		WantHash: wantHash,
	}
	if deploy.Spec.RevisionHistoryLimit != nil {
		in.HistoryLimit = int(*deploy.Spec.RevisionHistoryLimit)
	}
	switch {
	case v2.IsTrue(deploy.Annotations, v2.RollSetAnnotation):
		in.RollRequested = "roll requested on the deployment"
	case latest != nil && v2.IsTrue(latest.Annotations, v2.RollSetAnnotation):
		in.RollRequested = "roll requested on set " + latest.Name
	}
	byName := map[string]*v2.FirewallSet{}
	for _, set := range sets {
		byName[set.Name] = set
		in.Sets = append(in.Sets, setState(deploy, set, fws[set.UID], wantHash))
	}
	plan := Plan(in)
	logf.FromContext(ctx).V(1).Info("Rollout plan", "phase", plan.Phase, "actions", fmt.Sprint(plan.Actions))

	for _, a := range plan.Actions {
		var err error
		switch a.Kind {
		case ActionCreate:
			if wait := r.backoff(deploy); wait > 0 {
				return ctrl.Result{RequeueAfter: wait}, nil
			}
			return r.createSet(ctx, deploy, a, wantHash, userdataHash)
		case ActionUpdateTarget:
			err = r.updateTarget(ctx, deploy, byName[a.Set], a)
		case ActionScale:
			err = r.patchSet(ctx, deploy, byName[a.Set], func(s *v2.FirewallSet) { s.Spec.Replicas = a.Replicas })
			if err == nil {
				r.event(deploy, corev1.EventTypeNormal, "ScaledDown", "ScaleSet", "Scaled set %s to %d: %s", a.Set, a.Replicas, a.Why)
			}
		case ActionPromote:
			err = r.promote(ctx, deploy, byName[a.Set])
		case ActionDelete:
			err = r.deleteSet(ctx, deploy, byName[a.Set], a.Why)
		}
		if err != nil {
			return ctrl.Result{}, err
		}
	}
	// The other sets keep their templates, but inherited annotations follow the deployment. A
	// set found carrying traffic without the mark (created by the upstream manager, or the first
	// set) gets it now, so that it is kept as history once scaled down.
	for i, set := range sets {
		if !set.DeletionTimestamp.IsZero() {
			continue
		}
		mark := in.Sets[i].Promoted && !v2.IsTrue(set.Annotations, v2.PromotedAnnotation) && !demoted(plan, set.Name)
		if err := r.patchSet(ctx, deploy, set, func(s *v2.FirewallSet) {
			if mark {
				s.Annotations[v2.PromotedAnnotation] = "true"
			}
			if s.Labels == nil {
				s.Labels = map[string]string{}
			}
			maps.Copy(s.Labels, setLabels(deploy, s))
		}); err != nil {
			return ctrl.Result{}, err
		}
	}

	target := byName[plan.Target]
	switch plan.Phase {
	case PhaseComplete:
		setCondition(deploy, v2.ConditionProgressing, true, v2.ReasonNewFirewallSetAvailable, plan.Message)
		return ctrl.Result{}, nil
	case PhaseRetiring:
		setCondition(deploy, v2.ConditionProgressing, true, v2.ReasonFirewallSetUpdated, plan.Message)
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	default:
		return r.waitForSet(deploy, target, plan.Message), nil
	}
}

func demoted(plan RolloutPlan, name string) bool {
	for _, a := range plan.Actions {
		if a.Set == name && a.Demote {
			return true
		}
	}
	return false
}

// setState is what the plan needs of a set. A set without a template hash (created by the
// upstream manager) counts as built from the spec when size, image and networks match; one at
// the shortest distance with ready firewalls counts as promoted.
func setState(deploy *v2.FirewallDeployment, set *v2.FirewallSet, firewalls int, wantHash string) SetState {
	s := SetState{
		Name:      set.Name,
		Revision:  fwutil.Revision(set),
		Hash:      set.Annotations[fwutil.TemplateHashAnnotation],
		Replicas:  set.Spec.Replicas,
		Distance:  set.Spec.Distance,
		Ready:     set.Status.ReadyReplicas,
		Observed:  set.Status.ObservedGeneration == set.Generation,
		Firewalls: firewalls,
		Deleting:  !set.DeletionTimestamp.IsZero(),
		Promoted:  v2.IsTrue(set.Annotations, v2.PromotedAnnotation),
	}
	if s.Hash == "" {
		udh := set.Annotations[UserdataHashAnnotation]
		if fwutil.RolloutHash(&set.Spec.Template.Spec, udh) == fwutil.RolloutHash(&deploy.Spec.Template.Spec, udh) {
			s.Hash = wantHash
		}
	}
	if !s.Promoted && s.Distance == v2.FirewallShortestDistance && s.Replicas > 0 && s.Ready > 0 && !s.Deleting {
		s.Promoted = true
	}
	return s
}

// firewallsBySet counts the Firewall objects each set owns, those being deleted included.
func (r *Reconciler) firewallsBySet(ctx context.Context, deploy *v2.FirewallDeployment) (map[types.UID]int, error) {
	var list v2.FirewallList
	if err := r.Client.List(ctx, &list, client.InNamespace(deploy.Namespace)); err != nil {
		return nil, fmt.Errorf("listing firewalls: %w", err)
	}
	out := map[types.UID]int{}
	for i := range list.Items {
		if ref := metav1.GetControllerOf(&list.Items[i]); ref != nil && ref.Kind == "FirewallSet" {
			out[ref.UID]++
		}
	}
	return out, nil
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

func (r *Reconciler) createSet(ctx context.Context, deploy *v2.FirewallDeployment, a Action, templateHash, userdataHash string) (ctrl.Result, error) {
	set := &v2.FirewallSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fwutil.NameWithSuffix(deploy.Name, fwutil.RandomSuffix(5)),
			Namespace: deploy.Namespace,
			Labels:    map[string]string{fwutil.DeploymentLabel: deploy.Name},
			Annotations: map[string]string{
				v2.RevisionAnnotation:         strconv.Itoa(a.Revision),
				fwutil.TemplateHashAnnotation: templateHash,
				UserdataHashAnnotation:        userdataHash,
			},
		},
		Spec: v2.FirewallSetSpec{
			Replicas: a.Replicas,
			Selector: maps.Clone(deploy.Spec.Selector),
			Template: *deploy.Spec.Template.DeepCopy(),
			Distance: a.Distance,
		},
	}
	if set.Spec.Template.ObjectMeta.Labels == nil {
		set.Spec.Template.ObjectMeta.Labels = map[string]string{}
	}
	set.Spec.Template.ObjectMeta.Labels[fwutil.DeploymentLabel] = deploy.Name
	if len(set.Spec.Selector) == 0 {
		// The deployment label alone, the deployment's own default selector: the set's selector is
		// immutable, so every label in it is frozen for the set's life, and the other template
		// labels may follow the deployment in place. Sets are told apart by controller reference.
		set.Spec.Selector = map[string]string{fwutil.DeploymentLabel: deploy.Name}
	}
	maps.Copy(set.Labels, setLabels(deploy, set))
	v2.SyncInherited(deploy.Annotations, &set.Annotations)
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

	logf.FromContext(ctx).Info("Created firewall set", "set", set.Name, "revision", a.Revision, "reason", a.Why)
	r.event(deploy, corev1.EventTypeNormal, "SuccessfulCreate", "CreateSet", "Created set %s (revision %d): %s", set.Name, a.Revision, a.Why)
	setCondition(deploy, v2.ConditionProgressing, true, v2.ReasonNewFirewallSetCreated, fmt.Sprintf("set %s created: %s", set.Name, a.Why))

	if v2.IsTrue(deploy.Annotations, v2.RollSetAnnotation) {
		original := deploy.DeepCopy()
		delete(deploy.Annotations, v2.RollSetAnnotation)
		if err := r.Client.Patch(ctx, deploy, client.MergeFrom(original)); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{Requeue: true}, nil
}

// updateTarget applies the deployment's template (in-place fields), replicas, distance and
// revision to the target set. Only the target ever gets the current template: every other set
// keeps the one it was created with.
func (r *Reconciler) updateTarget(ctx context.Context, deploy *v2.FirewallDeployment, set *v2.FirewallSet, a Action) error {
	return r.patchSet(ctx, deploy, set, func(want *v2.FirewallSet) {
		want.Spec.Replicas = a.Replicas
		want.Spec.Distance = a.Distance
		labels := targetTemplateLabels(deploy, set)
		want.Spec.Template = *deploy.Spec.Template.DeepCopy()
		want.Spec.Template.ObjectMeta.Labels = labels
		if a.Revision != fwutil.Revision(set) {
			want.Annotations[v2.RevisionAnnotation] = strconv.Itoa(a.Revision)
			// Its progress deadline starts now: its creation may lie far back (a rollback).
			want.Annotations[v2.TargetSinceAnnotation] = r.Now().UTC().Format(time.RFC3339)
			r.event(deploy, corev1.EventTypeNormal, "Reactivated", "ScaleSet", "Set %s is the target again, as revision %d", set.Name, a.Revision)
		}
		if a.Demote {
			delete(want.Annotations, v2.PromotedAnnotation)
		}
	})
}

// promote marks the set as carrying the traffic and gives it the shortest distance.
func (r *Reconciler) promote(ctx context.Context, deploy *v2.FirewallDeployment, set *v2.FirewallSet) error {
	// The target's update earlier in the same pass may already have moved it to the shortest
	// distance, so only the promoted mark tells a new promotion from a repeated one.
	wasPromoted := v2.IsTrue(set.Annotations, v2.PromotedAnnotation)
	if err := r.patchSet(ctx, deploy, set, func(want *v2.FirewallSet) {
		want.Annotations[v2.PromotedAnnotation] = "true"
		want.Spec.Distance = v2.FirewallShortestDistance
	}); err != nil {
		return err
	}
	if !wasPromoted {
		r.rolloutDone(deploy, set)
	}
	return nil
}

// setLabels are the labels a set carries, so that `kubectl get fwset -l` finds it as it finds
// the firewalls: the deployment's own labels, the set's template labels (for the target those
// are the deployment's current ones) and the deployment label. They are added or overwritten,
// never removed: a label dropped from the template stays on the existing sets. Sets are owned by
// controller reference, so no label decides which deployment a set belongs to.
func setLabels(deploy *v2.FirewallDeployment, set *v2.FirewallSet) map[string]string {
	out := maps.Clone(deploy.Labels)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, set.Spec.Template.ObjectMeta.Labels)
	out[fwutil.DeploymentLabel] = deploy.Name
	return out
}

// targetTemplateLabels are the target's template labels: the deployment's template labels with
// the deployment label and the set's (effective) selector on top, so that the immutable selector keeps
// matching the firewalls while template label changes reach them in place.
func targetTemplateLabels(deploy *v2.FirewallDeployment, set *v2.FirewallSet) map[string]string {
	out := maps.Clone(deploy.Spec.Template.ObjectMeta.Labels)
	if out == nil {
		out = map[string]string{}
	}
	out[fwutil.DeploymentLabel] = deploy.Name
	selector := set.Spec.Selector
	if len(selector) == 0 {
		selector = set.Spec.Template.ObjectMeta.Labels // the effective selector of a set without one
	}
	maps.Copy(out, selector)
	return out
}

// patchSet applies mutate and the deployment's inherited annotations to a set, with optimistic
// locking: a set changed meanwhile is read again on the next pass instead of overwritten.
func (r *Reconciler) patchSet(ctx context.Context, deploy *v2.FirewallDeployment, set *v2.FirewallSet, mutate func(*v2.FirewallSet)) error {
	want := set.DeepCopy()
	if want.Annotations == nil {
		want.Annotations = map[string]string{}
	}
	mutate(want)
	v2.SyncInherited(deploy.Annotations, &want.Annotations)
	if equality.Semantic.DeepEqual(want.Spec, set.Spec) && equality.Semantic.DeepEqual(want.Annotations, set.Annotations) &&
		equality.Semantic.DeepEqual(want.Labels, set.Labels) {
		return nil
	}
	if err := r.Client.Patch(ctx, want, client.MergeFromWithOptions(set, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("updating set %s: %w", set.Name, err)
	}
	*set = *want
	return nil
}

func (r *Reconciler) deleteSet(ctx context.Context, deploy *v2.FirewallDeployment, set *v2.FirewallSet, why string) error {
	if !set.DeletionTimestamp.IsZero() {
		return nil
	}
	if err := r.Client.Delete(ctx, set, client.Preconditions{UID: &set.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting set %s: %w", set.Name, err)
	}
	r.event(deploy, corev1.EventTypeNormal, "SuccessfulDelete", "DeleteSet", "Deleted set %s: %s", set.Name, why)
	now := metav1.Now()
	set.DeletionTimestamp = &now // this pass leaves it alone from here on
	return nil
}

func (r *Reconciler) waitForProgress(deploy *v2.FirewallDeployment, latest *v2.FirewallSet, msg string) ctrl.Result {
	deadline := r.ProgressDeadline
	if deploy.Spec.ProgressDeadlineSeconds != nil {
		deadline = time.Duration(*deploy.Spec.ProgressDeadlineSeconds) * time.Second
	}
	if deadline > 0 {
		if age := r.Now().Sub(progressStart(latest)); age > deadline {
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

// waitingRecheck bounds how long a rolling deployment goes without a look of its own: set and
// firewall events bring it back at once, this only covers one that never came (before, the
// next look could be the progress deadline, 15 minutes away).
const waitingRecheck = 30 * time.Second

// waitForSet waits for the latest set. When its firewalls are ready and only its status lags
// behind its spec (a distance or template patch just went out), it looks again shortly instead
// of relying on the set's next status event alone.
func (r *Reconciler) waitForSet(deploy *v2.FirewallDeployment, latest *v2.FirewallSet, msg string) ctrl.Result {
	result := r.waitForProgress(deploy, latest, msg)
	recheck := waitingRecheck
	if latest.Status.ReadyReplicas >= deploy.Spec.Replicas {
		recheck = 2 * time.Second
	}
	if result.RequeueAfter == 0 && meta.IsStatusConditionFalse(deploy.Status.Conditions, v2.ConditionProgressing) {
		return result // the progress deadline passed: set events alone bring it back
	}
	if result.RequeueAfter == 0 || result.RequeueAfter > recheck {
		result.RequeueAfter = recheck
	}
	return result
}

// progressStart is when the set became its deployment's target: its creation, or when it was
// brought back (TargetSinceAnnotation), whichever is later.
func progressStart(set *v2.FirewallSet) time.Time {
	start := set.CreationTimestamp.Time
	if since, err := time.Parse(time.RFC3339, set.Annotations[v2.TargetSinceAnnotation]); err == nil && since.After(start) {
		return since
	}
	return start
}

func (r *Reconciler) rolloutDone(deploy *v2.FirewallDeployment, latest *v2.FirewallSet) {
	d := r.Now().Sub(progressStart(latest))
	r.event(deploy, corev1.EventTypeNormal, "RolloutComplete", "Rollout", "Set %s carries the traffic after %s", latest.Name, d.Round(time.Second))
	if r.OnRolloutDone != nil {
		r.OnRolloutDone(deploy.Namespace, deploy.Name, d)
	}
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
