package pause

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func owned(obj client.Object, kind, name string, uid types.UID) {
	obj.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: v2.GroupVersion.String(), Kind: kind, Name: name, UID: uid, Controller: ptr.To(true)}})
}

func cluster(name string, paused bool) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ClusterGVKs[0])
	u.SetNamespace("ns")
	u.SetName(name)
	_ = unstructured.SetNestedField(u.Object, paused, "spec", "paused")
	return u
}

func TestCheck(t *testing.T) {
	deploy := func(annotations, labels map[string]string) *v2.FirewallDeployment {
		return &v2.FirewallDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "d", UID: "d-uid", Annotations: annotations, Labels: labels}}
	}
	set := &v2.FirewallSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", UID: "s-uid"}}
	owned(set, "FirewallDeployment", "d", "d-uid")
	fw := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "f"}}
	owned(fw, "FirewallSet", "s", "s-uid")
	capi := map[string]string{ClusterNameLabel: "c"}

	for _, tc := range []struct {
		name      string
		objects   []client.Object
		withCAPI  bool
		want      bool
		wantBy    string
		checkedOn client.Object
	}{
		{name: "nothing paused", objects: []client.Object{deploy(nil, nil), set}, want: false},
		{name: "the deployment's annotation pauses the firewall", objects: []client.Object{deploy(map[string]string{v2.PausedAnnotation: "true"}, nil), set}, want: true, wantBy: "FirewallDeployment d"},
		{name: "Cluster API's annotation too", objects: []client.Object{deploy(map[string]string{v2.ClusterAPIPausedAnnotation: ""}, nil), set}, want: true, wantBy: "FirewallDeployment d"},
		{name: "paused=false does not pause", objects: []client.Object{deploy(map[string]string{v2.PausedAnnotation: "false"}, nil), set}, want: false},
		{name: "a paused Cluster pauses a labelled deployment's firewall", objects: []client.Object{deploy(nil, capi), set, cluster("c", true)}, withCAPI: true, want: true, wantBy: "Cluster c"},
		{name: "an unpaused Cluster does not", objects: []client.Object{deploy(nil, capi), set, cluster("c", false)}, withCAPI: true, want: false},
		{name: "a missing Cluster does not", objects: []client.Object{deploy(nil, capi), set}, withCAPI: true, want: false},
		{name: "without Cluster API installed the label is ignored", objects: []client.Object{deploy(nil, capi), set}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			if err := v2.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			if tc.withCAPI {
				scheme.AddKnownTypeWithName(ClusterGVKs[0], &unstructured.Unstructured{})
				list := ClusterGVKs[0]
				list.Kind += "List"
				scheme.AddKnownTypeWithName(list, &unstructured.UnstructuredList{})
			}
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(tc.objects...).Build()
			paused, by, err := Check(context.Background(), c, fw)
			if err != nil {
				t.Fatal(err)
			}
			if paused != tc.want || by != tc.wantBy {
				t.Errorf("Check = %v, %q; want %v, %q", paused, by, tc.want, tc.wantBy)
			}
		})
	}
}

func TestChanged(t *testing.T) {
	p := Changed()
	plain := &v2.FirewallDeployment{}
	paused := &v2.FirewallDeployment{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v2.PausedAnnotation: "true"}}}
	byOwner := &v2.FirewallSet{Status: v2.FirewallSetStatus{Conditions: []metav1.Condition{{Type: v2.ConditionPaused, Status: metav1.ConditionTrue}}}}
	resumed := &v2.FirewallSet{Status: v2.FirewallSetStatus{Conditions: []metav1.Condition{{Type: v2.ConditionPaused, Status: metav1.ConditionFalse}}}}
	for _, tc := range []struct {
		name     string
		old, new client.Object
		want     bool
	}{
		{"pause annotation added", plain, paused, true},
		{"pause annotation removed", paused, plain, true},
		{"nothing about the pause", plain, plain.DeepCopy(), false},
		{"Paused condition turned false", byOwner, resumed, true},
	} {
		if got := p.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
