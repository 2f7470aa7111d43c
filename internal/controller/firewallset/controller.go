// Package firewallset keeps a FirewallSet's number of firewalls, like a ReplicaSet: it creates
// and deletes firewalls, orders them by importance for distance and scale-down, adopts orphans,
// replaces timed-out firewalls (the replacement first) and reports counts.
package firewallset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/controller/namespaces"
	"github.com/palisade-fw/palisade/internal/controller/pause"
)

// Reconciler reconciles FirewallSets.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Timeouts fwutil.Timeouts
	Now      func() time.Time
	// Filter, when set, admits only namespaces it returns true for (--namespace-selector).
	Filter func(ctx context.Context, namespace string) bool

	// created remembers firewalls created but not yet seen in the cache, per set (a
	// ReplicaSet's create expectations), so a reconcile on a stale cache creates no extra one.
	mu      sync.Mutex
	created map[string]map[string]time.Time
	// deleted are firewalls this controller deleted (delete expectations), per set.
	deleted map[string]map[string]time.Time
	// known are the firewalls last seen per set, to notice one removed behind our back.
	known map[string]map[string]time.Time
}

// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewallsets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewallsets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewallsets/finalizers,verbs=update
// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewalls,verbs=get;list;watch;create;update;patch;delete

// SetupWithManager registers the controller; every change of an owned firewall (status too)
// re-evaluates the set.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, options controller.Options) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("firewallset").
		For(&v2.FirewallSet{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&v2.Firewall{}).
		// The end of the deployment's pause reaches its sets at once.
		Watches(&v2.FirewallDeployment{}, handler.EnqueueRequestsFromMapFunc(r.setsOf), builder.WithPredicates(pause.Changed())).
		WithOptions(options)
	if r.Filter != nil {
		b = namespaces.Watch(b, r.Client, func() client.ObjectList { return &v2.FirewallSetList{} })
	}
	if gvk, ok := pause.ClusterAPIInstalled(mgr.GetRESTMapper()); ok {
		b = b.Watches(pause.ClusterObject(gvk), handler.EnqueueRequestsFromMapFunc(r.setsOf))
	}
	return b.Complete(r)
}

// setsOf maps a deployment to its sets, and a Cluster API Cluster to every set of its namespace.
func (r *Reconciler) setsOf(ctx context.Context, obj client.Object) []reconcile.Request {
	var list v2.FirewallSetList
	if err := r.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	_, isDeployment := obj.(*v2.FirewallDeployment)
	var reqs []reconcile.Request
	for i := range list.Items {
		if ref := metav1.GetControllerOf(&list.Items[i]); !isDeployment || ref != nil && ref.UID == obj.GetUID() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// Selector is the set's effective selector: spec.selector, else the template labels.
func Selector(set *v2.FirewallSet) map[string]string {
	if len(set.Spec.Selector) > 0 {
		return set.Spec.Selector
	}
	return set.Spec.Template.ObjectMeta.Labels
}

// Reconcile brings a set to its replica count.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	if r.Filter != nil && !r.Filter(ctx, req.Namespace) {
		return ctrl.Result{}, nil
	}
	set := &v2.FirewallSet{}
	if err := r.Client.Get(ctx, req.NamespacedName, set); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !set.DeletionTimestamp.IsZero() {
		paused, by, err := pause.Check(ctx, r.Client, set)
		if err != nil {
			return ctrl.Result{}, err
		}
		if paused {
			// A paused set changes no firewall, deleting none: the deletion waits for the unpause.
			original := set.DeepCopy()
			pause.SetDeletionWaits(&set.Status.Conditions, set.Generation, by)
			return ctrl.Result{}, client.IgnoreNotFound(r.Client.Status().Patch(ctx, set, client.MergeFrom(original)))
		}
		return r.reconcileDelete(ctx, set)
	}
	if controllerutil.AddFinalizer(set, v2.FirewallSetFinalizer) {
		return ctrl.Result{Requeue: true}, r.Client.Update(ctx, set)
	}

	owned, orphans, err := r.firewalls(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}

	original := set.DeepCopy()
	defer func() {
		r.setStatus(set, owned)
		if retErr == nil {
			set.Status.ObservedGeneration = set.Generation // only a pass that went through
		}
		patch := client.MergeFrom(original)
		if data, err := patch.Data(set); err == nil && string(data) == "{}" {
			return // nothing changed (as serialized): an empty patch still costs a request and rate limit
		}
		if err := r.Client.Status().Patch(ctx, set, patch); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, fmt.Errorf("patching set status: %w", err))
		}
	}()

	paused, by, err := pause.Check(ctx, r.Client, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	pause.SetCondition(&set.Status.Conditions, set.Generation, paused, by)
	if paused {
		return ctrl.Result{}, nil
	}

	for _, fw := range orphans {
		if err := r.adopt(ctx, set, fw); err != nil {
			return ctrl.Result{}, err
		}
		owned = append(owned, fw)
	}
	return r.scale(ctx, set, owned)
}

// firewalls returns the set's own firewalls (by controller reference) and orphans its selector
// matches. Owning by reference keeps two sets with the same selector apart during a rollout.
func (r *Reconciler) firewalls(ctx context.Context, set *v2.FirewallSet) (owned, orphans []*v2.Firewall, err error) {
	var list v2.FirewallList
	if err := r.Client.List(ctx, &list, client.InNamespace(set.Namespace)); err != nil {
		return nil, nil, fmt.Errorf("listing firewalls: %w", err)
	}
	selector := labels.SelectorFromSet(Selector(set))
	for i := range list.Items {
		fw := &list.Items[i]
		ref := metav1.GetControllerOf(fw)
		switch {
		case ref != nil && ref.UID == set.UID:
			owned = append(owned, fw)
		case ref == nil && fw.DeletionTimestamp.IsZero() && len(Selector(set)) > 0 && selector.Matches(labels.Set(fw.Labels)):
			orphans = append(orphans, fw)
		}
	}
	return owned, orphans, nil
}

func (r *Reconciler) adopt(ctx context.Context, set *v2.FirewallSet, fw *v2.Firewall) error {
	original := fw.DeepCopy()
	if err := controllerutil.SetControllerReference(set, fw, r.Client.Scheme()); err != nil {
		return err
	}
	// Optimistic locking: while an old and a new set share a selector, only one may adopt.
	if err := r.Client.Patch(ctx, fw, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adopting firewall %s: %w", fw.Name, err)
	}
	r.event(set, corev1.EventTypeNormal, "Adopted", "Adopt", "Adopted firewall %s", fw.Name)
	return nil
}

func (r *Reconciler) event(set *v2.FirewallSet, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(set, nil, eventType, reason, action, note, args...)
	}
}

// desiredFirewall is the firewall the set wants at an importance position.
func desiredFirewall(set *v2.FirewallSet, fw *v2.Firewall, distance v2.FirewallDistance) *v2.Firewall {
	want := fw.DeepCopy()
	want.Spec = *set.Spec.Template.Spec.DeepCopy()
	want.Distance = distance
	if want.Labels == nil {
		want.Labels = map[string]string{}
	}
	maps.Copy(want.Labels, set.Spec.Template.ObjectMeta.Labels)
	maps.Copy(want.Labels, Selector(set))
	// Inherited while the set has them (upstream copied no-controller-connection only once).
	v2.SyncInherited(set.Annotations, &want.Annotations)
	return want
}

func changed(a, b *v2.Firewall) bool {
	return !equality.Semantic.DeepEqual(a.Spec, b.Spec) || a.Distance != b.Distance ||
		!equality.Semantic.DeepEqual(a.Labels, b.Labels) || !equality.Semantic.DeepEqual(a.Annotations, b.Annotations)
}

func (r *Reconciler) setStatus(set *v2.FirewallSet, owned []*v2.Firewall) {
	now := r.Now()
	status := &set.Status
	status.TargetReplicas = set.Spec.Replicas
	status.ReadyReplicas, status.ProgressingReplicas, status.UnhealthyReplicas = 0, 0, 0
	for _, fw := range owned {
		if !fw.DeletionTimestamp.IsZero() {
			continue
		}
		switch v := fwutil.Evaluate(fw, now, r.Timeouts); v.Health {
		case fwutil.HealthReady:
			status.ReadyReplicas++
		case fwutil.HealthProgressing:
			status.ProgressingReplicas++
		default:
			status.UnhealthyReplicas++
		}
	}
	status.ObservedRevision = max(fwutil.Revision(set), 0)
	status.Selector = labels.SelectorFromSet(Selector(set)).String()
	ready := metav1.Condition{Type: v2.ConditionReady, Status: metav1.ConditionFalse, Reason: v2.ReasonNotReady, ObservedGeneration: set.Generation,
		Message: fmt.Sprintf("%d of %d firewalls ready", status.ReadyReplicas, set.Spec.Replicas)}
	created := fwutil.FirewallsCreated(owned)
	created.ObservedGeneration = set.Generation
	if status.ReadyReplicas >= set.Spec.Replicas {
		ready.Status, ready.Reason = metav1.ConditionTrue, v2.ReasonReady
	} else if created.Reason == v2.ReasonAllocationFailed {
		ready.Message += "; " + created.Message // why, not only how many
	}
	meta.SetStatusCondition(&status.Conditions, ready)
	meta.SetStatusCondition(&status.Conditions, created)
}
