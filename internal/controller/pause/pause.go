// Package pause decides whether an object is paused, by its own annotation or by an owner's:
// a paused FirewallDeployment pauses its sets and their firewalls, so that nothing below it
// writes to metal-api (as needed during clusterctl move or a Gardener control-plane migration).
package pause

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// Check reports whether obj or one of its controlling owners (set, deployment) is paused, and
// which object carries the annotation.
func Check(ctx context.Context, c client.Reader, obj client.Object) (bool, string, error) {
	current := obj
	for depth := 0; depth < 3 && current != nil; depth++ {
		if v2.IsPaused(current.GetAnnotations()) {
			return true, describe(current), nil
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
		c.Message = fmt.Sprintf("paused by %s: no metal-api writes and no changes to children", by)
	}
	meta.SetStatusCondition(conditions, c)
}
