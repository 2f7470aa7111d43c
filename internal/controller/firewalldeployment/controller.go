// Package firewalldeployment rolls FirewallSets like a Deployment rolls ReplicaSets: a change
// that needs new machines (size, image, networks, rendered userdata, or a roll request) gets a
// new set; RollingUpdate frees the old sets only once every new firewall is ready, Recreate frees
// them first. Everything else is applied in place.
package firewalldeployment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/firewall"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/controller/namespaces"
	"github.com/palisade-fw/palisade/internal/controller/pause"
	"github.com/palisade-fw/palisade/internal/controller/refwatch"
	"github.com/palisade-fw/palisade/internal/userdata"
)

// Reconciler reconciles FirewallDeployments.
type Reconciler struct {
	Client client.Client
	// writtenStatus is the status this manager last wrote per deployment (by UID): the base of
	// the next status patch. The cache may not hold that write yet when the next pass runs.
	writtenStatus sync.Map
	Recorder      events.EventRecorder
	Userdata      firewall.UserdataRenderer
	// ProgressDeadline applies when a deployment sets none.
	ProgressDeadline time.Duration
	// SafetyBackoff is the least time between two new sets of one deployment, a guard against
	// a tight create loop whatever its cause.
	SafetyBackoff time.Duration
	Now           func() time.Time
	// Filter, when set, admits only namespaces it returns true for (--namespace-selector).
	Filter func(ctx context.Context, namespace string) bool
	// Images resolves the newest image for spec.autoUpdate.machineImage; nil disables it.
	Images ImageResolver
	// AgentAccess, when set, provisions the agent identity and the kubeconfigs the template's
	// userdata asks the manager to generate.
	AgentAccess AgentAccessor
	// References configures the Secret and ConfigMap watches (--namespace, the manager's
	// reference cache); Rest defaults to the manager's.
	References refwatch.Config
	// SSHKeySecret, when set, names the ssh key pair Secret in each deployment's namespace whose
	// public key a deployment without sshPublicKeys gets (GEPM's -ssh-key-secret-name).
	SSHKeySecret string
	// Secrets reads that Secret (the manager's reference cache); nil means Client.
	Secrets client.Reader
	// OnRolloutDone observes the duration of a finished rollout (metrics).
	OnRolloutDone func(namespace, name string, d time.Duration)

	mu          sync.Mutex
	lastCreated map[string]time.Time
}

// AgentAccessor provisions what a deployment's agents need to reach this cluster. Ensure returns
// when to run again (token rotation); 0 means no deadline.
type AgentAccessor interface {
	Ensure(ctx context.Context, deploy *v2.FirewallDeployment) (time.Duration, error)
}

// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewalldeployments,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewalldeployments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewalldeployments/finalizers,verbs=update
// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewallsets,verbs=get;list;watch;create;update;patch;delete
// The agent identity (internal/userdata/agentaccess): one ServiceAccount, Role and RoleBinding
// per deployment, bound tokens, and the kubeconfig Secrets. These rights exist only in the
// namespaces the manager serves: the placeholder namespace "served-namespace" becomes one Role
// per served namespace in the chart, never a ClusterRole (docs/security.md).
// +kubebuilder:rbac:groups="",namespace=served-namespace,resources=serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=served-namespace,resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,namespace=served-namespace,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=served-namespace,resources=secrets,verbs=get;list;watch;create;update;patch;delete

// SetupWithManager registers the controller. Set status changes and the Secrets and ConfigMaps
// the userdata reads trigger it.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, options controller.Options) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	r.lastCreated = map[string]time.Time{}
	refs := r.References
	if refs.Rest == nil {
		refs.Rest = mgr.GetConfig()
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("firewalldeployment").
		For(&v2.FirewallDeployment{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Owns(&v2.FirewallSet{}).
		WatchesRawSource(refwatch.Source(refs, refwatch.Secrets, handler.EnqueueRequestsFromMapFunc(r.deploymentsReferencingSecret))).
		WatchesRawSource(refwatch.Source(refs, refwatch.ConfigMaps, handler.EnqueueRequestsFromMapFunc(r.deploymentsReferencing(false)))).
		Watches(&v2.Firewall{}, handler.EnqueueRequestsFromMapFunc(r.deploymentOfFirewall),
			builder.WithPredicates(predicate.Or[client.Object](firewallEgressChanged{}, firewallGone{}))).
		WithOptions(options)
	if r.Filter != nil {
		b = namespaces.Watch(b, r.Client, func() client.ObjectList { return &v2.FirewallDeploymentList{} })
	}
	if gvk, ok := pause.ClusterAPIInstalled(mgr.GetRESTMapper()); ok {
		b = b.Watches(pause.ClusterObject(gvk), handler.EnqueueRequestsFromMapFunc(r.deploymentsInNamespace))
	}
	return b.Complete(r)
}

// firewallGone admits the removal of a Firewall object: a retiring set counts its firewalls until
// the last is gone, which changes no set status, so nothing else would tell the deployment.
type firewallGone struct{ predicate.Funcs }

func (firewallGone) Create(event.CreateEvent) bool   { return false }
func (firewallGone) Update(event.UpdateEvent) bool   { return false }
func (firewallGone) Delete(event.DeleteEvent) bool   { return true }
func (firewallGone) Generic(event.GenericEvent) bool { return false }

// deploymentsInNamespace maps a Cluster API Cluster to the deployments of its namespace.
func (r *Reconciler) deploymentsInNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	var list v2.FirewallDeploymentList
	if err := r.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// deploymentsReferencingSecret maps a Secret to the deployments whose userdata reads it and,
// for the ssh key pair Secret, to those that take their key from it.
func (r *Reconciler) deploymentsReferencingSecret(ctx context.Context, obj client.Object) []reconcile.Request {
	return append(r.deploymentsReferencing(true)(ctx, obj), r.deploymentsWithoutSSHKeys(ctx, obj)...)
}

func (r *Reconciler) deploymentsReferencing(secret bool) handler.MapFunc {
	return firewall.MapReferencing(r.Userdata, secret, func(ctx context.Context, namespace string) ([]*v2.FirewallDeployment, error) {
		var list v2.FirewallDeploymentList
		if err := r.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
			return nil, err
		}
		out := make([]*v2.FirewallDeployment, len(list.Items))
		for i := range list.Items {
			out[i] = &list.Items[i]
		}
		return out, nil
	}, func(d *v2.FirewallDeployment) *v2.FirewallSpec { return &d.Spec.Template.Spec })
}

// Reconcile rolls one deployment one step further.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	if r.Filter != nil && !r.Filter(ctx, req.Namespace) {
		return ctrl.Result{}, nil
	}
	deploy := &v2.FirewallDeployment{}
	if err := r.Client.Get(ctx, req.NamespacedName, deploy); err != nil {
		if apierrors.IsNotFound(err) {
			r.forgetWrittenStatus(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// GEPM's updates drop userdataContents (its API has none) and its webhook configuration
	// defaults on CREATE only: read the deployment as the defaulter would have written it.
	userdata.DefaultGardenerUserdata(deploy)
	paused, pausedBy, err := pause.Check(ctx, r.Client, deploy)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !deploy.DeletionTimestamp.IsZero() {
		if paused {
			// No change to children while paused, deleting none: the deletion waits.
			original := deploy.DeepCopy()
			pause.SetDeletionWaits(&deploy.Status.Conditions, deploy.Generation, pausedBy)
			return ctrl.Result{}, client.IgnoreNotFound(r.Client.Status().Patch(ctx, deploy, client.MergeFrom(original)))
		}
		return r.reconcileDelete(ctx, deploy)
	}
	// Before the finalizer's write, which stores the default as upstream's webhook would.
	if err := r.defaultSSHKeys(ctx, deploy); err != nil {
		return ctrl.Result{}, err
	}
	if controllerutil.AddFinalizer(deploy, v2.FirewallDeploymentFinalizer) {
		return ctrl.Result{Requeue: true}, r.Client.Update(ctx, deploy)
	}

	sets, err := r.ownedSets(ctx, deploy)
	if err != nil {
		return ctrl.Result{}, err
	}
	original := deploy.DeepCopy()
	defer func() {
		if sets, err := r.ownedSets(ctx, deploy); err == nil {
			r.setStatus(deploy, sets)
		}
		if retErr == nil {
			deploy.Status.ObservedGeneration = deploy.Generation // only a pass that went through
		}
		// The diff is taken against what this manager last wrote, not against the cached
		// object: a pass reading a cache that lacks the previous pass's write would otherwise
		// find nothing to write and leave that write (say, Progressing FirewallSetUpdated after
		// the roll completed) in place, and status-only updates trigger no reconcile.
		base := original
		if last, ok := r.writtenStatus.Load(deploy.UID); ok {
			base = original.DeepCopy()
			base.Status = *last.(writtenStatus).status
		}
		patch := client.MergeFrom(base)
		if data, err := patch.Data(deploy); err == nil && string(data) == "{}" {
			return // nothing changed (as serialized): an empty patch still costs a request and rate limit
		}
		if err := r.Client.Status().Patch(ctx, deploy, patch); err != nil {
			r.writtenStatus.Delete(deploy.UID) // unknown what the server holds: diff against the cache next time
			if !apierrors.IsNotFound(err) {
				retErr = errors.Join(retErr, fmt.Errorf("patching deployment status: %w", err))
			}
			return
		}
		r.writtenStatus.Store(deploy.UID, writtenStatus{name: client.ObjectKeyFromObject(deploy), status: deploy.Status.DeepCopy()})
	}()

	pause.SetCondition(&deploy.Status.Conditions, deploy.Generation, paused, pausedBy)
	if paused {
		// The agents' tokens keep rotating (they change no machine and no set): a pause longer
		// than a token's lifetime must not lock the agents out.
		refresh, err := r.ensureAgentAccess(ctx, deploy)
		return ctrl.Result{RequeueAfter: refresh}, err
	}

	if changed, err := r.rollback(ctx, deploy, sets); err != nil || changed {
		return ctrl.Result{}, err // the spec write brings the deployment back
	}
	changed, retry, err := r.maintain(ctx, deploy, sets)
	if err != nil || changed {
		// The write brings the deployment back with its new spec or annotations.
		return ctrl.Result{}, err
	}
	if err := r.publishEgressCIDRs(ctx, deploy, sets); err != nil {
		// Gardener's bookkeeping must not hold up the firewalls; the next reconcile tries again.
		logf.FromContext(ctx).Error(err, "Publishing the egress CIDRs to Gardener failed")
	}
	result, err = r.rollout(ctx, deploy, sets)
	if retry > 0 && err == nil && !result.Requeue && (result.RequeueAfter == 0 || retry < result.RequeueAfter) {
		result.RequeueAfter = retry // a failed maintenance step is tried again, without blocking the rollout
	}
	return result, err
}

func (r *Reconciler) ownedSets(ctx context.Context, deploy *v2.FirewallDeployment) ([]*v2.FirewallSet, error) {
	var list v2.FirewallSetList
	if err := r.Client.List(ctx, &list, client.InNamespace(deploy.Namespace)); err != nil {
		return nil, fmt.Errorf("listing sets: %w", err)
	}
	var owned []*v2.FirewallSet
	for i := range list.Items {
		if ref := metav1.GetControllerOf(&list.Items[i]); ref != nil && ref.UID == deploy.UID {
			owned = append(owned, &list.Items[i])
		}
	}
	return owned, nil
}

func (r *Reconciler) reconcileDelete(ctx context.Context, deploy *v2.FirewallDeployment) (ctrl.Result, error) {
	if !fwutil.HoldsFinalizer(deploy, v2.FirewallDeploymentFinalizer) {
		return ctrl.Result{}, nil
	}
	sets, err := r.ownedSets(ctx, deploy)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, set := range sets {
		if set.DeletionTimestamp.IsZero() {
			if err := r.Client.Delete(ctx, set); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, err
			}
		}
	}
	if len(sets) > 0 {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	original := deploy.DeepCopy()
	fwutil.ReleaseFinalizers(deploy, v2.FirewallDeploymentFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Patch(ctx, deploy, client.MergeFrom(original)))
}

func (r *Reconciler) event(obj client.Object, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, action, note, args...)
	}
}

type writtenStatus struct {
	name   types.NamespacedName
	status *v2.FirewallDeploymentStatus
}

// forgetWrittenStatus drops what was written for a deployment that is gone (keyed by UID, so
// it is found by name here).
func (r *Reconciler) forgetWrittenStatus(name types.NamespacedName) {
	r.writtenStatus.Range(func(uid, w any) bool {
		if w.(writtenStatus).name == name {
			r.writtenStatus.Delete(uid)
		}
		return true
	})
}
