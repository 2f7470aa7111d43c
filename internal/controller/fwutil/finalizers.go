package fwutil

import (
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// HoldsFinalizer reports whether obj carries the controller's own finalizer or the upstream
// manager's shared one (v2.UpstreamFinalizer), which Gardener's extension writes on the
// FirewallDeployment it creates and which a restored Firewall keeps from the migration state.
func HoldsFinalizer(obj client.Object, own string) bool {
	return controllerutil.ContainsFinalizer(obj, own) || controllerutil.ContainsFinalizer(obj, v2.UpstreamFinalizer)
}

// ReleaseFinalizers removes both once the controller's cleanup is done: nothing else removes
// the upstream finalizer, so leaving it would keep the object, and Gardener waiting for
// NotFound, forever. It reports whether obj changed.
func ReleaseFinalizers(obj client.Object, own string) bool {
	removedOwn := controllerutil.RemoveFinalizer(obj, own)
	removedUpstream := controllerutil.RemoveFinalizer(obj, v2.UpstreamFinalizer)
	return removedOwn || removedUpstream
}
