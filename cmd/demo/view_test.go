package main

import (
	"bytes"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func ownedObject(namespace, name, ownerKind, owner string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name, OwnerReferences: []metav1.OwnerReference{{
		APIVersion: v2.GroupVersion.String(), Kind: ownerKind, Name: owner, Controller: ptr.To(true),
	}}}
}

func firewall(name, set, image string, ready bool) v2.Firewall {
	fw := v2.Firewall{ObjectMeta: ownedObject("ns", name, "FirewallSet", set), Spec: v2.FirewallSpec{Image: image}}
	if ready {
		fw.Status.Phase = v2.FirewallPhaseRunning
		fw.Status.Conditions = []metav1.Condition{{Type: v2.ConditionReady, Status: metav1.ConditionTrue}}
	}
	return fw
}

// rollSnapshot is a deployment of two replicas in the middle of a roll from "old" to "new".
func rollSnapshot(firewalls ...v2.Firewall) snapshot {
	d := v2.FirewallDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fw", Generation: 2}}
	d.Spec.Replicas = 2
	d.Status.ObservedGeneration = 2
	d.Status.Conditions = []metav1.Condition{{Type: v2.ConditionAvailable, Status: metav1.ConditionTrue}}
	return snapshot{
		deployments: []v2.FirewallDeployment{d},
		sets: []v2.FirewallSet{
			{ObjectMeta: ownedObject("ns", "fw-old", "FirewallDeployment", "fw")},
			{ObjectMeta: ownedObject("ns", "fw-new", "FirewallDeployment", "fw")},
			{ObjectMeta: ownedObject("ns", "other", "FirewallDeployment", "someone-else")},
		},
		firewalls: firewalls,
	}
}

func TestRollProgress(t *testing.T) {
	tests := map[string]struct {
		snap      snapshot
		readyNew  int
		old       int
		completed bool
	}{
		"old still running": {
			snap:     rollSnapshot(firewall("a", "fw-old", "old", true), firewall("b", "fw-new", "new", true), firewall("c", "fw-new", "new", true)),
			readyNew: 2, old: 1,
		},
		"new not ready yet": {
			snap:     rollSnapshot(firewall("b", "fw-new", "new", true), firewall("c", "fw-new", "new", false)),
			readyNew: 1,
		},
		"done": {
			snap:     rollSnapshot(firewall("b", "fw-new", "new", true), firewall("c", "fw-new", "new", true), firewall("x", "other", "old", false)),
			readyNew: 2, completed: true,
		},
	}
	for name, tt := range tests {
		ps := tt.snap.progressTo("new")
		if len(ps) != 1 {
			t.Fatalf("%s: %d progress entries", name, len(ps))
		}
		if ps[0].readyOnImage != tt.readyNew || ps[0].onOtherImage != tt.old || allDone(ps) != tt.completed {
			t.Errorf("%s: got ready %d old %d done %v, want %d %d %v", name, ps[0].readyOnImage, ps[0].onOtherImage, allDone(ps), tt.readyNew, tt.old, tt.completed)
		}
	}
	unsettled := rollSnapshot(firewall("b", "fw-new", "new", true), firewall("c", "fw-new", "new", true))
	unsettled.deployments[0].Generation = 3
	if allDone(unsettled.progressTo("new")) {
		t.Error("done although the deployment's status is for an older generation")
	}
	if allDone(snapshot{}.progressTo("new")) {
		t.Error("done without any deployment")
	}
}

func TestLineViewPrintsOnlyChanges(t *testing.T) {
	var out bytes.Buffer
	v := &view{out: &out}
	first := rollSnapshot(firewall("a", "fw-old", "old", true))
	v.show(first, "provisioning")
	v.show(first, "provisioning")
	if n := strings.Count(out.String(), "firewall ns/a:"); n != 1 {
		t.Errorf("unchanged firewall printed %d times:\n%s", n, out.String())
	}
	out.Reset()
	v.show(rollSnapshot(), "provisioning")
	if !strings.Contains(out.String(), "firewall ns/a: deleted") {
		t.Errorf("deletion not reported:\n%s", out.String())
	}
}

func TestBar(t *testing.T) {
	for _, tt := range []struct {
		done, total int
		want        string
	}{{0, 2, "[----]"}, {1, 2, "[##--]"}, {2, 2, "[####]"}, {3, 2, "[####]"}, {0, 0, "[----]"}} {
		if got := bar(tt.done, tt.total, 4); got != tt.want {
			t.Errorf("bar(%d, %d) = %s, want %s", tt.done, tt.total, got, tt.want)
		}
	}
}
