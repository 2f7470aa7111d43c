package firewallset

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
)

// scale syncs the template into every firewall, then creates or deletes firewalls until the set
// has its replicas. A timed-out firewall is replaced: the new one is created first; an old one
// that was ready once (health timeout) is deleted only once enough firewalls are ready again, so
// one replica never means zero, one that never became ready (create timeout) at once.
func (r *Reconciler) scale(ctx context.Context, set *v2.FirewallSet, owned []*v2.Firewall) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	now := r.Now()
	var active, timedOut []*v2.Firewall
	var recheck time.Duration
	for _, fw := range owned {
		if !fw.DeletionTimestamp.IsZero() || r.deletePending(set, fw) {
			continue
		}
		v := fwutil.Evaluate(fw, now, r.Timeouts)
		if v.TimedOut() {
			timedOut = append(timedOut, fw)
			continue
		}
		active = append(active, fw)
		if v.RecheckIn > 0 && (recheck == 0 || v.RecheckIn < recheck) {
			recheck = v.RecheckIn
		}
	}
	fwutil.SortByImportance(active)

	for i, fw := range active {
		want := desiredFirewall(set, fw, fwutil.DistanceFor(set.Spec.Distance, i))
		if !changed(fw, want) {
			continue
		}
		if err := r.Client.Patch(ctx, want, client.MergeFrom(fw)); err != nil {
			return ctrl.Result{}, fmt.Errorf("updating firewall %s: %w", fw.Name, err)
		}
	}

	pending := r.pendingCreates(set, owned)
	vanished := r.vanished(set, owned)
	for n := len(active) + pending; n < set.Spec.Replicas; n++ {
		// A firewall that disappeared without this controller deleting it (a shallow delete
		// that removed the finalizer) still has its machine: the replacement takes its name, so
		// the firewall controller adopts that machine instead of allocating one more.
		name := ""
		if len(vanished) > 0 {
			name, vanished = vanished[0], vanished[1:]
			log.Info("Re-creating a firewall that was removed without freeing its machine", "firewall", name)
		}
		fw, err := r.create(ctx, set, name, fwutil.DistanceFor(set.Spec.Distance, n))
		if err != nil {
			return ctrl.Result{}, err
		}
		r.expectCreated(set, fw.Name)
		log.Info("Created firewall", "firewall", fw.Name)
	}
	if pending > 0 && recheck == 0 {
		recheck = time.Second // the watch brings the new firewalls; this is the fallback
	}
	for i := set.Spec.Replicas; i < len(active); i++ {
		if err := r.delete(ctx, set, active[i], "scale down"); err != nil {
			return ctrl.Result{}, err
		}
	}

	ready := 0
	for _, fw := range active {
		if fwutil.Evaluate(fw, now, r.Timeouts).Health == fwutil.HealthReady {
			ready++
		}
	}
	for _, fw := range timedOut {
		v := fwutil.Evaluate(fw, now, r.Timeouts)
		// Only a firewall that was ready once may still carry traffic and is kept until its
		// replacement is ready. One that never became ready (create timeout) goes at once:
		// keeping it would pile up a machine per create timeout while replacements keep failing.
		if ready < set.Spec.Replicas && v.Health == fwutil.HealthHealthTimeout {
			log.Info("Keeping timed-out firewall until its replacement is ready", "firewall", fw.Name)
			continue
		}
		r.event(set, corev1.EventTypeWarning, string(v.Health), "Replace", "Replacing firewall %s: %s", fw.Name, v.Message)
		if err := r.delete(ctx, set, fw, string(v.Health)); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: recheck}, nil
}

func (r *Reconciler) create(ctx context.Context, set *v2.FirewallSet, name string, distance v2.FirewallDistance) (*v2.Firewall, error) {
	if name == "" {
		name = fwutil.NameWithSuffix(firewallNameBase(set), fwutil.RandomSuffix(5))
	}
	fw := &v2.Firewall{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   set.Namespace,
			Labels:      map[string]string{},
			Annotations: map[string]string{},
		},
	}
	maps.Copy(fw.Annotations, set.Spec.Template.ObjectMeta.Annotations)
	fw = desiredFirewall(set, fw, distance)
	if len(fw.Annotations) == 0 {
		fw.Annotations = nil
	}
	if err := controllerutil.SetControllerReference(set, fw, r.Client.Scheme()); err != nil {
		return nil, err
	}
	if err := r.Client.Create(ctx, fw); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("firewall name %s taken, retrying with another: %w", fw.Name, err)
		}
		r.event(set, corev1.EventTypeWarning, "FailedCreate", "Create", "Creating a firewall failed: %v", err)
		return nil, fmt.Errorf("creating firewall: %w", err)
	}
	r.event(set, corev1.EventTypeNormal, "SuccessfulCreate", "Create", "Created firewall %s", fw.Name)
	return fw, nil
}

func (r *Reconciler) delete(ctx context.Context, set *v2.FirewallSet, fw *v2.Firewall, why string) error {
	if err := r.Client.Delete(ctx, fw, client.Preconditions{UID: &fw.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting firewall %s: %w", fw.Name, err)
	}
	r.expectDeleted(set, fw.Name)
	r.event(set, corev1.EventTypeNormal, "SuccessfulDelete", "Delete", "Deleted firewall %s (%s)", fw.Name, why)
	return nil
}

// firewallNameBase keeps upstream's "<namespace>-firewall" names in Gardener shoot namespaces and
// names firewalls after their deployment elsewhere, where one namespace may hold many.
func firewallNameBase(set *v2.FirewallSet) string {
	if strings.HasPrefix(set.Namespace, "shoot--") {
		return set.Namespace + "-firewall"
	}
	if d := set.Labels[fwutil.DeploymentLabel]; d != "" {
		return d
	}
	return set.Name
}

func (r *Reconciler) reconcileDelete(ctx context.Context, set *v2.FirewallSet) (ctrl.Result, error) {
	if !fwutil.HoldsFinalizer(set, v2.FirewallSetFinalizer) {
		return ctrl.Result{}, nil
	}
	owned, _, err := r.firewalls(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, fw := range owned {
		if fw.DeletionTimestamp.IsZero() {
			if err := r.delete(ctx, set, fw, "set deleted"); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	if len(owned) > 0 {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	r.mu.Lock()
	delete(r.known, string(set.UID))
	delete(r.deleted, string(set.UID))
	r.mu.Unlock()
	original := set.DeepCopy()
	fwutil.ReleaseFinalizers(set, v2.FirewallSetFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Patch(ctx, set, client.MergeFrom(original)))
}

// createExpiry bounds how long a created firewall that never shows up in the cache is waited for.
const createExpiry = 30 * time.Second

// pendingCreates counts the firewalls this controller created for the set that the cache does not
// show yet, and forgets those it shows (or that are older than createExpiry).
func (r *Reconciler) pendingCreates(set *v2.FirewallSet, owned []*v2.Firewall) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := r.created[string(set.UID)]
	if len(names) == 0 {
		return 0
	}
	seen := map[string]bool{}
	for _, fw := range owned {
		seen[fw.Name] = true
	}
	now := r.Now()
	for name, at := range names {
		if seen[name] || now.Sub(at) > createExpiry {
			delete(names, name)
		}
	}
	if len(names) == 0 {
		delete(r.created, string(set.UID))
	}
	return len(names)
}

func (r *Reconciler) expectCreated(set *v2.FirewallSet, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.created == nil {
		r.created = map[string]map[string]time.Time{}
	}
	if r.created[string(set.UID)] == nil {
		r.created[string(set.UID)] = map[string]time.Time{}
	}
	r.created[string(set.UID)][name] = r.Now()
}

// Delete expectations: a firewall this controller deleted counts as gone even while the cache
// still shows it without a deletion timestamp, so a reconcile on a stale cache neither deletes a
// second firewall nor keeps counting the first.

// deletePending reports whether fw was deleted by this controller and the cache lags.
func (r *Reconciler) deletePending(set *v2.FirewallSet, fw *v2.Firewall) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.deleted[string(set.UID)][fw.Name]
	if !ok {
		return false
	}
	if !fw.DeletionTimestamp.IsZero() || r.Now().Sub(at) > createExpiry {
		delete(r.deleted[string(set.UID)], fw.Name)
		return false
	}
	return true
}

func (r *Reconciler) expectDeleted(set *v2.FirewallSet, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deleted == nil {
		r.deleted = map[string]map[string]time.Time{}
	}
	if r.deleted[string(set.UID)] == nil {
		r.deleted[string(set.UID)] = map[string]time.Time{}
	}
	r.deleted[string(set.UID)][name] = r.Now()
}

// vanished returns the names of firewalls the set owned that are gone although this controller
// did not delete them, and remembers the current ones for the next pass. A replacement takes
// such a name: when the firewall went through its finalizer the machine was freed and a new one
// is allocated; when someone removed the finalizer (a shallow delete) the machine is adopted
// instead of leaked. Names are offered for createExpiry; the memory is per process.
func (r *Reconciler) vanished(set *v2.FirewallSet, owned []*v2.Firewall) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil {
		r.known = map[string]map[string]time.Time{}
	}
	uid := string(set.UID)
	now := r.Now()
	current := map[string]time.Time{}
	for _, fw := range owned {
		current[fw.Name] = time.Time{}
	}
	var gone []string
	for name, since := range r.known[uid] {
		if _, present := current[name]; present {
			continue
		}
		if _, deletedByUs := r.deleted[uid][name]; deletedByUs {
			continue
		}
		if since.IsZero() {
			since = now
		}
		if now.Sub(since) > createExpiry {
			continue
		}
		current[name] = since
		gone = append(gone, name)
	}
	slices.Sort(gone)
	r.known[uid] = current
	return gone
}
