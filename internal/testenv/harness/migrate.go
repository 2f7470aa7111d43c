package harness

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// ShallowDelete is a migration's last step on the source seed (Gardener's Migrate): every
// Firewall, FirewallSet and FirewallDeployment of namespace loses its finalizers and is deleted
// with orphan propagation, so nothing frees a machine. envtest runs no garbage collector, so the
// orphan finalizer the API server adds is released here too. It is idempotent: callers retry it
// until it returns nil (a conflict with a manager's write returns the error).
func ShallowDelete(ctx context.Context, c client.Client, namespace string) error {
	for _, list := range []client.ObjectList{&v2.FirewallList{}, &v2.FirewallSetList{}, &v2.FirewallDeploymentList{}} {
		if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return err
		}
		objs, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		for _, o := range objs {
			obj, ok := o.(client.Object)
			if !ok {
				return fmt.Errorf("%T is no client.Object", o)
			}
			if err := shallowDeleteOne(ctx, c, obj); err != nil {
				return fmt.Errorf("shallow delete of %s: %w", obj.GetName(), err)
			}
		}
	}
	return nil
}

func shallowDeleteOne(ctx context.Context, c client.Client, obj client.Object) error {
	if len(obj.GetFinalizers()) > 0 {
		obj.SetFinalizers(nil)
		if err := c.Update(ctx, obj); err != nil {
			return client.IgnoreNotFound(err)
		}
	}
	if err := c.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationOrphan)); err != nil {
		return client.IgnoreNotFound(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !controllerutil.RemoveFinalizer(obj, metav1.FinalizerOrphanDependents) {
		return nil
	}
	return client.IgnoreNotFound(c.Update(ctx, obj))
}
