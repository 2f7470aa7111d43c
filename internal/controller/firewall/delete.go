package firewall

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/metal"
)

// reconcileDelete frees every machine of the firewall, then releases the finalizer. A paused
// firewall is released without freeing: its machine is being handed over (clusterctl move,
// control-plane migration) and must survive the deletion of this copy of the object.
func (r *Reconciler) reconcileDelete(ctx context.Context, fw *v2.Firewall, paused bool) (ctrl.Result, error) {
	if !fwutil.HoldsFinalizer(fw, v2.FirewallFinalizer) {
		return ctrl.Result{}, nil
	}
	log := logf.FromContext(ctx)
	if paused {
		log.Info("Firewall deleted while paused, keeping its machine")
		r.event(fw, corev1.EventTypeNormal, "Released", "Delete", "Deleted while paused: machine left allocated for the new owner")
		return ctrl.Result{}, r.removeFinalizer(ctx, fw)
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
