// Package namespaces lets the controllers follow --namespace-selector: a Namespace whose labels
// change may start or stop matching, so every object of the controller's kind in it is
// reconciled again (the Reconcile filter then decides).
package namespaces

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Watch adds the Namespace watch to b: label changes of a Namespace enqueue every object that
// newList lists in it. Creation and deletion are left out: a new namespace holds nothing yet,
// and a deleted one takes its objects along.
func Watch(b *builder.Builder, reader client.Reader, newList func() client.ObjectList) *builder.Builder {
	return b.Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(enqueueAll(reader, newList)),
		builder.WithPredicates(labelsChanged{}))
}

func enqueueAll(reader client.Reader, newList func() client.ObjectList) handler.MapFunc {
	return func(ctx context.Context, ns client.Object) []reconcile.Request {
		list := newList()
		if err := reader.List(ctx, list, client.InNamespace(ns.GetName())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		_ = meta.EachListItem(list, func(o runtime.Object) error {
			if obj, ok := o.(client.Object); ok {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
			}
			return nil
		})
		return reqs
	}
}

type labelsChanged struct{ predicate.Funcs }

func (labelsChanged) Create(event.CreateEvent) bool   { return false }
func (labelsChanged) Delete(event.DeleteEvent) bool   { return false }
func (labelsChanged) Generic(event.GenericEvent) bool { return false }
func (labelsChanged) Update(e event.UpdateEvent) bool {
	return predicate.LabelChangedPredicate{}.Update(e)
}
