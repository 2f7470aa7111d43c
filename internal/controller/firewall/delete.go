package firewall

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/controller/pause"
	"github.com/palisade-fw/palisade/internal/metal"
)

// reconcileDelete frees every machine of the firewall, then releases the finalizer. A paused
// firewall that is deleted waits, with its machine, until the pause ends: nothing is freed and
// nothing released while paused. (clusterctl move and Gardener's migration remove the
// finalizers of the copies they discard themselves, so a hand-over never reaches this.)
func (r *Reconciler) reconcileDelete(ctx context.Context, fw *v2.Firewall, paused bool, pausedBy string) (ctrl.Result, error) {
	if !fwutil.HoldsFinalizer(fw, v2.FirewallFinalizer) {
		return ctrl.Result{}, nil
	}
	log := logf.FromContext(ctx)
	if paused {
		log.Info("Firewall deleted while paused, waiting for the pause to end", "pausedBy", pausedBy)
		original := fw.DeepCopy()
		pause.SetDeletionWaits(&fw.Status.Conditions, fw.Generation, pausedBy)
		if err := r.Client.Status().Patch(ctx, fw, client.MergeFrom(original)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		return ctrl.Result{}, nil // the end of the pause enqueues it
	}

	if fw.Status.Phase != v2.FirewallPhaseDeleting {
		original := fw.DeepCopy()
		fw.Status.Phase = v2.FirewallPhaseDeleting
		if err := r.Client.Status().Patch(ctx, fw, client.MergeFrom(original)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}

	machines, err := r.Fleet.Refresh(ctx, fw)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("looking up machines to free: %w", err)
	}
	if len(machines) == 0 {
		// An allocation that may still complete would leave a machine nobody owns: wait for it.
		if started := fw.Status.AllocationStarted; started != nil {
			if wait := r.Config.AllocationGrace - r.Now().Sub(started.Time); wait > 0 {
				log.Info("Deleted while an allocation may still complete, waiting for it", "until", started.Add(r.Config.AllocationGrace))
				return ctrl.Result{RequeueAfter: min(wait, max(r.Config.CreatingPoll, time.Second))}, nil
			}
		}
	}
	for _, m := range machines {
		if _, err := r.Metal.FreeMachine(ctx, m.ID); err != nil && !metal.IsNotFound(err) {
			r.event(fw, corev1.EventTypeWarning, "FailedDelete", "Free", "Freeing machine %s failed: %v", m.ID, err)
			return ctrl.Result{}, fmt.Errorf("freeing machine %s: %w", m.ID, err)
		}
		log.Info("Freed firewall machine", "machine", m.ID)
		r.event(fw, corev1.EventTypeNormal, "SuccessfulDelete", "Free", "Freed machine %s", m.ID)
	}
	r.Fleet.Store(fw) // freed: none left
	if err := r.deleteMonitor(ctx, fw); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.removeFinalizer(ctx, fw)
}

func (r *Reconciler) removeFinalizer(ctx context.Context, fw *v2.Firewall) error {
	original := fw.DeepCopy()
	if !fwutil.ReleaseFinalizers(fw, v2.FirewallFinalizer) {
		return nil
	}
	return client.IgnoreNotFound(r.Client.Patch(ctx, fw, client.MergeFrom(original)))
}
