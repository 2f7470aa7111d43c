// Package firewall reconciles Firewall objects with metal-api machines: it allocates a machine
// for each Firewall (never two), adopts existing ones, re-creates vanished ones, keeps tags and
// ssh keys in sync, frees the machine on delete and reports machine and agent health.
package firewall

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
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
	"sigs.k8s.io/controller-runtime/pkg/source"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/namespaces"
	"github.com/palisade-fw/palisade/internal/controller/pause"
	"github.com/palisade-fw/palisade/internal/controller/refwatch"
	"github.com/palisade-fw/palisade/internal/metal"
)

// UserdataRenderer renders a firewall's userdata. A *UserdataError marks input that is not there
// yet or not usable (a missing Secret, say): the firewall waits instead of failing.
type UserdataRenderer interface {
	Render(ctx context.Context, namespace string, spec *v2.FirewallSpec) (userdata, hash string, err error)
	// References returns the Secrets and ConfigMaps the spec reads, for watches.
	References(spec *v2.FirewallSpec) (secrets, configMaps []string)
}

// UserdataError is a userdata problem the user has to fix or wait for, with a condition reason.
type UserdataError struct {
	Reason  string
	Message string
}

func (e *UserdataError) Error() string { return e.Message }

// MapReferencing maps a Secret (secret true) or ConfigMap event to the objects of its namespace
// whose userdata reads it. list returns those objects with their firewall specs.
func MapReferencing[T client.Object](renderer UserdataRenderer, secret bool, list func(ctx context.Context, namespace string) ([]T, error), spec func(T) *v2.FirewallSpec) handler.MapFunc {
	return func(ctx context.Context, obj client.Object) []reconcile.Request {
		items, err := list(ctx, obj.GetNamespace())
		if err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, item := range items {
			secrets, configMaps := renderer.References(spec(item))
			names := configMaps
			if secret {
				names = secrets
			}
			if slices.Contains(names, obj.GetName()) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(item)})
			}
		}
		return reqs
	}
}

// Config holds the knobs of the firewall controller.
type Config struct {
	// ClusterID, when set, is written as the cluster tag on every machine.
	ClusterID string
	// CreatingPoll is how often metal-api is asked while a machine is provisioning.
	CreatingPoll time.Duration
	// PhoneHomePoll is how often a provisioning machine is looked at around the time its
	// phone-home is expected (poll.go); 0 or not below CreatingPoll turns that off.
	PhoneHomePoll time.Duration
	// RunningPoll is how often metal-api is asked for running machines (batched per partition).
	RunningPoll time.Duration
	// ConnectedThreshold is how old the agent's last rule apply may be for Connected.
	ConnectedThreshold time.Duration
	// SeedConnectedThreshold is how old the agent's last seed reconcile may be for SeedConnected.
	SeedConnectedThreshold time.Duration
	// MonitorRollInterval is the least time between two roll requests through one firewall's
	// FirewallMonitor; 0 means DefaultMonitorRollInterval.
	MonitorRollInterval time.Duration
	// ShootAccess is published in every firewall's status.shootAccess (Gardener).
	ShootAccess ShootAccessConfig
	// AllocationGrace is the longest metal-api may take to complete an allocation server-side.
	// After an allocation whose outcome is unknown (timeout, 5xx, lost connection) no second one
	// is sent before a look-up found no machine this long after the first was sent.
	AllocationGrace time.Duration
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		CreatingPoll:           5 * time.Second,
		PhoneHomePoll:          500 * time.Millisecond,
		RunningPoll:            time.Minute,
		ConnectedThreshold:     2 * time.Minute,
		SeedConnectedThreshold: 3 * time.Minute,
		AllocationGrace:        2 * time.Minute,
	}
}

// Reconciler reconciles Firewalls.
type Reconciler struct {
	Client   client.Client
	Metal    metal.Client
	Fleet    *Fleet
	Userdata UserdataRenderer
	Recorder events.EventRecorder
	Config   Config
	Now      func() time.Time
	// Filter, when set, admits only namespaces it returns true for (--namespace-selector).
	Filter func(ctx context.Context, namespace string) bool
	// Workload, when set, connects to the workload clusters that receive FirewallMonitors.
	Workload Workload
	// WorkloadEvents, when set, enqueues firewalls whose monitor changed in a workload cluster.
	WorkloadEvents source.Source
	// DefaultWorkloadKubeconfig is the manager-wide workload kubeconfig Secret reference.
	DefaultWorkloadKubeconfig string
	// References configures the Secret and ConfigMap watches (--namespace, the manager's
	// reference cache); Rest defaults to the manager's.
	References refwatch.Config

	trust monitorTrust
	// exporters remembers what was applied last per workload cluster and namespace.
	exporters exporterMemo
}

// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewalls,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewalls/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=firewall.metal-stack.io,resources=firewalls/finalizers,verbs=update
// Userdata references and workload kubeconfigs: read in the served namespaces only.
// +kubebuilder:rbac:groups="",namespace=served-namespace,resources=secrets;configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// SetupWithManager registers the controller. Secrets and ConfigMaps referenced by userdata
// trigger the firewalls that read them, so a firewall waiting for a Secret proceeds at once.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, options controller.Options) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Fleet == nil {
		r.Fleet = NewFleet(r.Metal, r.Now)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("firewall").
		For(&v2.Firewall{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{},
			predicate.LabelChangedPredicate{},
			agentReportChanged{},
			controllerChanged{},
		))).
		WatchesRawSource(refwatch.Source(r.references(mgr), refwatch.Secrets, handler.EnqueueRequestsFromMapFunc(r.firewallsReferencing(true)))).
		WatchesRawSource(refwatch.Source(r.references(mgr), refwatch.ConfigMaps, handler.EnqueueRequestsFromMapFunc(r.firewallsReferencing(false)))).
		// The end of an owner's pause reaches every firewall below it at once.
		Watches(&v2.FirewallSet{}, handler.EnqueueRequestsFromMapFunc(r.firewallsOfSet), builder.WithPredicates(pause.Changed())).
		Watches(&v2.FirewallDeployment{}, handler.EnqueueRequestsFromMapFunc(r.firewallsOfDeployment), builder.WithPredicates(pause.Changed())).
		WithOptions(options).
		WatchesRawSource(r.Fleet.Changes())
	if gvk, ok := pause.ClusterAPIInstalled(mgr.GetRESTMapper()); ok {
		b = b.Watches(pause.ClusterObject(gvk), handler.EnqueueRequestsFromMapFunc(r.firewallsInNamespace))
	}
	if r.WorkloadEvents != nil {
		b = b.WatchesRawSource(r.WorkloadEvents).
			WatchesRawSource(refwatch.Source(r.references(mgr), refwatch.Secrets, handler.EnqueueRequestsFromMapFunc(r.firewallsWithWorkloadKubeconfig)))
	}
	if r.Filter != nil {
		b = namespaces.Watch(b, r.Client, func() client.ObjectList { return &v2.FirewallList{} })
	}
	return b.Complete(r)
}

func (r *Reconciler) references(mgr ctrl.Manager) refwatch.Config {
	cfg := r.References
	if cfg.Rest == nil {
		cfg.Rest = mgr.GetConfig()
	}
	return cfg
}

// agentReportChanged lets the agent's status reports through while ignoring our own status writes.
type agentReportChanged struct{ predicate.Funcs }

func (agentReportChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*v2.Firewall)
	n, ok2 := e.ObjectNew.(*v2.Firewall)
	if !ok1 || !ok2 {
		return false
	}
	oc, nc := o.Status.ControllerStatus, n.Status.ControllerStatus
	if oc == nil || nc == nil {
		return oc != nc
	}
	return !oc.Updated.Equal(&nc.Updated) || !oc.SeedUpdated.Equal(&nc.SeedUpdated) ||
		oc.ActualDistance != nc.ActualDistance || oc.ObservedGeneration != nc.ObservedGeneration ||
		oc.ActualVersion != nc.ActualVersion || fmt.Sprint(oc.RulesApplied) != fmt.Sprint(nc.RulesApplied)
}

// controllerChanged lets an adoption through (a new controlling set), so that the machine's set
// tag follows at once instead of at the next poll.
type controllerChanged struct{ predicate.Funcs }

func (controllerChanged) Update(e event.UpdateEvent) bool {
	if e.ObjectOld == nil || e.ObjectNew == nil {
		return false
	}
	o, n := metav1.GetControllerOf(e.ObjectOld), metav1.GetControllerOf(e.ObjectNew)
	if o == nil || n == nil {
		return o != n
	}
	return o.UID != n.UID
}

func (r *Reconciler) firewallsReferencing(secret bool) handler.MapFunc {
	return MapReferencing(r.Userdata, secret, func(ctx context.Context, namespace string) ([]*v2.Firewall, error) {
		var list v2.FirewallList
		err := r.Client.List(ctx, &list, client.InNamespace(namespace))
		return toPointers(list.Items), err
	}, func(fw *v2.Firewall) *v2.FirewallSpec { return &fw.Spec })
}

// firewallsWithWorkloadKubeconfig maps a Secret to the firewalls whose monitor goes to the
// workload cluster it holds the kubeconfig of, so that a Secret that appears or changes (a
// rotated token) is used at once.
func (r *Reconciler) firewallsWithWorkloadKubeconfig(ctx context.Context, obj client.Object) []reconcile.Request {
	var list v2.FirewallList
	if err := r.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		ref := list.Items[i].Annotations[v2.WorkloadKubeconfigAnnotation]
		if ref == "" {
			ref = r.DefaultWorkloadKubeconfig
		}
		if name, _, _ := strings.Cut(ref, "/"); name != "" && name == obj.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// firewallsOfSet maps a set to the firewalls it controls.
func (r *Reconciler) firewallsOfSet(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.firewallsOwnedBy(ctx, obj.GetNamespace(), map[types.UID]bool{obj.GetUID(): true})
}

// firewallsOfDeployment maps a deployment to the firewalls of all its sets.
func (r *Reconciler) firewallsOfDeployment(ctx context.Context, obj client.Object) []reconcile.Request {
	var sets v2.FirewallSetList
	if err := r.Client.List(ctx, &sets, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	owners := map[types.UID]bool{}
	for i := range sets.Items {
		if ref := metav1.GetControllerOf(&sets.Items[i]); ref != nil && ref.UID == obj.GetUID() {
			owners[sets.Items[i].UID] = true
		}
	}
	return r.firewallsOwnedBy(ctx, obj.GetNamespace(), owners)
}

func (r *Reconciler) firewallsOwnedBy(ctx context.Context, namespace string, owners map[types.UID]bool) []reconcile.Request {
	var list v2.FirewallList
	if err := r.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if ref := metav1.GetControllerOf(&list.Items[i]); ref != nil && owners[ref.UID] {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// firewallsInNamespace maps a Cluster API Cluster to every firewall of its namespace: a pause
// or its end may reach them through any owner labelled with the cluster's name.
func (r *Reconciler) firewallsInNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	var list v2.FirewallList
	if err := r.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

func toPointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// Reconcile brings one Firewall and its machine together.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	if r.Filter != nil && !r.Filter(ctx, req.Namespace) {
		return ctrl.Result{}, nil
	}
	fw := &v2.Firewall{}
	if err := r.Client.Get(ctx, req.NamespacedName, fw); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := logf.FromContext(ctx)

	paused, pausedBy, err := pause.Check(ctx, r.Client, fw)
	if err != nil {
		return ctrl.Result{}, err
	}

	if !fw.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, fw, paused, pausedBy)
	}
	if controllerutil.AddFinalizer(fw, v2.FirewallFinalizer) {
		// Go on with the updated object: a requeue would wait for the controller's rate limiter
		// (10/s shared by all firewalls), which dominated creating many firewalls at once.
		if err := r.Client.Update(ctx, fw); err != nil {
			return ctrl.Result{}, err
		}
	}

	original := fw.DeepCopy()
	defer func() {
		if retErr == nil {
			fw.Status.ObservedGeneration = fw.Generation // only a pass that went through
		}
		patch := client.MergeFrom(original)
		if data, err := patch.Data(fw); err == nil && string(data) == "{}" {
			return // nothing changed (as serialized): an empty patch still costs a request and rate limit
		}
		if err := r.Client.Status().Patch(ctx, fw, patch); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, fmt.Errorf("patching firewall status: %w", err))
		}
	}()

	fw.Status.ShootAccess = r.Config.ShootAccess.For(fw)
	pause.SetCondition(&fw.Status.Conditions, fw.Generation, paused, pausedBy)
	if paused {
		// Reading metal-api and reporting go on; writes (allocate, free, tag sync) wait.
		log.V(1).Info("Firewall is paused, only reporting", "pausedBy", pausedBy)
	}

	result, err = r.reconcileMachine(ctx, fw, paused)
	deriveConditions := func() {
		r.setAgentConditions(fw)
		r.setProvisioned(fw)
	}
	deriveConditions()
	if monitorErr := r.reconcileMonitor(ctx, fw, deriveConditions); monitorErr != nil {
		err = errors.Join(err, monitorErr)
	}
	err = errors.Join(err, r.reconcileExporters(ctx, fw)) // exporters.go
	if err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
}

func (r *Reconciler) setCondition(fw *v2.Firewall, condType string, status bool, reason, message string) {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&fw.Status.Conditions, metav1.Condition{
		Type: condType, Status: s, Reason: reason, Message: message, ObservedGeneration: fw.Generation,
	})
}

func (r *Reconciler) event(fw *v2.Firewall, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(fw, nil, eventType, reason, action, note, args...)
	}
}
