// Package pause decides whether an object is paused, by its own annotation, an owner's, or the
// Cluster API Cluster it belongs to: a paused FirewallDeployment pauses its sets and their
// firewalls, so that nothing below it writes to metal-api or changes (as needed during
// clusterctl move or a Gardener control-plane migration).
//
// What pause means is the same on every level (docs/manager.md has the table): no metal-api
// write and no change to children, deletion included (a deleted paused object waits); reading
// metal-api, status, conditions and agent token rotation go on. Ending a pause re-enqueues the
// object and every object below it at once (Changed, and the Cluster watch of the controllers).
package pause

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// ClusterNameLabel names the Cluster API Cluster an object belongs to (Cluster API's own label).
const ClusterNameLabel = "cluster.x-k8s.io/cluster-name"

// ClusterGVKs are the Cluster API Cluster versions read, newest first.
var ClusterGVKs = []schema.GroupVersionKind{
	{Group: "cluster.x-k8s.io", Version: "v1beta2", Kind: "Cluster"},
	{Group: "cluster.x-k8s.io", Version: "v1beta1", Kind: "Cluster"},
}

// +kubebuilder:rbac:groups=cluster.x-k8s.io,resources=clusters,verbs=get;list;watch

// Check reports whether obj or one of its controlling owners (set, deployment) is paused, by
// annotation or by its Cluster API Cluster's spec.paused, and which object pauses it.
func Check(ctx context.Context, c client.Reader, obj client.Object) (bool, string, error) {
	current := obj
	for depth := 0; depth < 3 && current != nil; depth++ {
		if v2.IsPaused(current.GetAnnotations()) {
			return true, describe(current), nil
		}
		if name := current.GetLabels()[ClusterNameLabel]; name != "" {
			paused, err := clusterPaused(ctx, c, current.GetNamespace(), name)
			if err != nil {
				return false, "", err
			}
			if paused {
				return true, "Cluster " + name, nil
			}
		}
		ref := metav1.GetControllerOf(current)
		if ref == nil {
			return false, "", nil
		}
		var owner client.Object
		switch ref.Kind {
		case "FirewallSet":
			owner = &v2.FirewallSet{}
		case "FirewallDeployment":
			owner = &v2.FirewallDeployment{}
		default:
			return false, "", nil
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: current.GetNamespace(), Name: ref.Name}, owner); err != nil {
			if apierrors.IsNotFound(err) {
				return false, "", nil
			}
			return false, "", fmt.Errorf("reading owner %s %s: %w", ref.Kind, ref.Name, err)
		}
		if owner.GetUID() != ref.UID {
			return false, "", nil
		}
		current = owner
	}
	return false, "", nil
}

// clusterPaused reads spec.paused of the Cluster API Cluster, as Cluster API's own pause
// predicates do; a cluster without Cluster API installed, or without that Cluster, is not paused.
func clusterPaused(ctx context.Context, c client.Reader, namespace, name string) (bool, error) {
	for _, gvk := range ClusterGVKs {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u)
		switch {
		case meta.IsNoMatchError(err):
			continue
		case apierrors.IsNotFound(err):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("reading Cluster %s: %w", name, err)
		}
		paused, _, _ := unstructured.NestedBool(u.Object, "spec", "paused")
		return paused || v2.IsPaused(u.GetAnnotations()), nil
	}
	return false, nil
}

func describe(obj client.Object) string {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		switch obj.(type) {
		case *v2.Firewall:
			kind = "Firewall"
		case *v2.FirewallSet:
			kind = "FirewallSet"
		case *v2.FirewallDeployment:
			kind = "FirewallDeployment"
		}
	}
	return fmt.Sprintf("%s %s", kind, obj.GetName())
}

// SetCondition records the Paused condition.
func SetCondition(conditions *[]metav1.Condition, generation int64, paused bool, by string) {
	c := metav1.Condition{Type: v2.ConditionPaused, Status: metav1.ConditionFalse, Reason: v2.ReasonNotPaused, ObservedGeneration: generation}
	if paused {
		c.Status = metav1.ConditionTrue
		c.Reason = v2.ReasonPaused
		c.Message = fmt.Sprintf("paused by %s: no metal-api writes and no changes to children; status reporting goes on", by)
	}
	meta.SetStatusCondition(conditions, c)
}

// SetDeletionWaits records that a deleted object waits for the end of its pause.
func SetDeletionWaits(conditions *[]metav1.Condition, generation int64, by string) {
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type: v2.ConditionPaused, Status: metav1.ConditionTrue, Reason: v2.ReasonDeletionPaused, ObservedGeneration: generation,
		Message: fmt.Sprintf("deleted while paused by %s: the deletion (freeing the machines) waits until the pause ends", by),
	})
}

// Changed lets an update through when the object's pause state changed: its annotations, or
// the Paused condition its controller derived (from an owner or a Cluster). Controllers of the
// objects below watch with it, so that the end of a pause reaches every child at once.
func Changed() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return false
			}
			if v2.IsPaused(e.ObjectOld.GetAnnotations()) != v2.IsPaused(e.ObjectNew.GetAnnotations()) {
				return true
			}
			return conditionStatus(e.ObjectOld) != conditionStatus(e.ObjectNew)
		},
	}
}

func conditionStatus(obj client.Object) metav1.ConditionStatus {
	var conds []metav1.Condition
	switch o := obj.(type) {
	case *v2.FirewallDeployment:
		conds = o.Status.Conditions
	case *v2.FirewallSet:
		conds = o.Status.Conditions
	}
	if c := meta.FindStatusCondition(conds, v2.ConditionPaused); c != nil {
		return c.Status
	}
	return metav1.ConditionUnknown
}

// ClusterAPIInstalled reports whether the API server serves Cluster API Clusters, so that the
// controllers watch them only where they exist.
func ClusterAPIInstalled(mapper meta.RESTMapper) (schema.GroupVersionKind, bool) {
	for _, gvk := range ClusterGVKs {
		if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			return gvk, true
		}
	}
	return schema.GroupVersionKind{}, false
}

// ClusterObject returns an empty Cluster of gvk for a watch.
func ClusterObject(gvk schema.GroupVersionKind) client.Object {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}
