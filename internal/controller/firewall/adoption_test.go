package firewall

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func ownedBy(set string, labels map[string]string) *v2.Firewall {
	fw := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Name: "fw", Namespace: "ns", Labels: labels}}
	if set != "" {
		yes := true
		fw.OwnerReferences = []metav1.OwnerReference{{APIVersion: v2.GroupVersion.String(), Kind: "FirewallSet", Name: set, UID: types.UID(set), Controller: &yes}}
	}
	return fw
}

func TestAdoptionReachesTheMachineTags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new *v2.Firewall
		want     bool
	}{
		{"adopted by a new set", ownedBy("old", nil), ownedBy("new", nil), true},
		{"an orphan adopted", ownedBy("", nil), ownedBy("new", nil), true},
		{"orphaned", ownedBy("old", nil), ownedBy("", nil), true},
		{"same owner, other change", ownedBy("old", nil), ownedBy("old", map[string]string{"a": "b"}), false},
		{"no owner before or after", ownedBy("", nil), ownedBy("", nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (controllerChanged{}).Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
				t.Errorf("reconcile = %v, want %v", got, tc.want)
			}
		})
	}

	// What the reconcile then writes: the set tag of the new owner, the machine's other tags kept.
	r := &Reconciler{}
	current := []string{v2.ManagedByTag + "=" + v2.ManagedByValue, v2.SetTag + "=old", "operator=note"}
	got := mergeTags(current, r.desiredTags(ownedBy("new", nil)))
	if !slices.Contains(got, v2.SetTag+"=new") || slices.Contains(got, v2.SetTag+"=old") || !slices.Contains(got, "operator=note") {
		t.Errorf("tags after adoption %v, want the new set's tag and operator=note", got)
	}
}
