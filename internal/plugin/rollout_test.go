package plugin

import (
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
)

func deployment(replicas int, image string, mutate ...func(*v2.FirewallDeployment)) *v2.FirewallDeployment {
	d := &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "tenant", UID: "deploy-uid", Generation: 1},
		Spec: v2.FirewallDeploymentSpec{
			Replicas: replicas,
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"purpose": "edge"}},
				Spec:       v2.FirewallSpec{Image: image, Size: "n1"},
			},
		},
		Status: v2.FirewallDeploymentStatus{ObservedGeneration: 1},
	}
	for _, m := range mutate {
		m(d)
	}
	return d
}

func set(rev int, image string, replicas, ready int) v2.FirewallSet {
	name := "edge-" + image
	return v2.FirewallSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID(name),
			Annotations:     map[string]string{v2.RevisionAnnotation: itoa(rev)},
			OwnerReferences: []metav1.OwnerReference{{UID: "deploy-uid", Controller: ptr.To(true)}},
		},
		Spec: v2.FirewallSetSpec{
			Replicas: replicas,
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"purpose": "edge", fwutil.DeploymentLabel: "edge"}},
				Spec:       v2.FirewallSpec{Image: image, Size: "n1"},
			},
		},
		Status: v2.FirewallSetStatus{ReadyReplicas: ready},
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func firewall(name string, owner v2.FirewallSet, ready bool) v2.Firewall {
	status := metav1.ConditionFalse
	reason := v2.ReasonNotReady
	if ready {
		status, reason = metav1.ConditionTrue, v2.ReasonReady
	}
	return v2.Firewall{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{UID: owner.UID, Controller: ptr.To(true)}}},
		Status: v2.FirewallStatus{
			Phase:      v2.FirewallPhaseRunning,
			Conditions: []metav1.Condition{{Type: v2.ConditionReady, Status: status, Reason: reason}},
		},
	}
}

func TestRolloutStatus(t *testing.T) {
	oldSet, newSet := set(1, "a", 2, 2), set(2, "b", 2, 1)
	tests := []struct {
		name       string
		snapshot   Snapshot
		done, fail bool
		contains   []string
	}{
		{
			name:     "spec change not observed yet",
			snapshot: Snapshot{Deployment: deployment(2, "b", func(d *v2.FirewallDeployment) { d.Generation = 2 })},
			contains: []string{"spec update to be observed"},
		},
		{
			name: "progress deadline exceeded fails",
			snapshot: Snapshot{Deployment: deployment(2, "b", func(d *v2.FirewallDeployment) {
				d.Status.Conditions = []metav1.Condition{{Type: v2.ConditionProgressing, Status: metav1.ConditionFalse, Reason: v2.ReasonProgressDeadlineExceeded, Message: "no progress for 10m"}}
			})},
			fail:     true,
			contains: []string{"exceeded its progress deadline", "no progress for 10m"},
		},
		{
			name:     "no set yet",
			snapshot: Snapshot{Deployment: deployment(2, "b")},
			contains: []string{"first firewall set"},
		},
		{
			name: "new firewalls being created, old and new listed",
			snapshot: Snapshot{
				Deployment: deployment(2, "b", func(d *v2.FirewallDeployment) { d.Status.UpdatedReplicas = 1 }),
				Sets:       []v2.FirewallSet{oldSet, newSet},
				Firewalls:  []v2.Firewall{firewall("old-1", oldSet, true), firewall("old-2", oldSet, true), firewall("new-1", newSet, false)},
			},
			contains: []string{"1 out of 2 new firewalls have been created", "new firewall new-1 (revision 2): Running, not ready (NotReady)", "old firewall old-1 (revision 1): Running, ready"},
		},
		{
			name: "created but not ready",
			snapshot: Snapshot{
				Deployment: deployment(2, "b", func(d *v2.FirewallDeployment) {
					d.Status.UpdatedReplicas, d.Status.UpdatedReadyReplicas, d.Status.ReadyReplicas = 2, 1, 3
				}),
				Sets: []v2.FirewallSet{oldSet, newSet},
			},
			contains: []string{"1 of 2 new firewalls are ready"},
		},
		{
			name: "old firewalls still being freed",
			snapshot: Snapshot{
				Deployment: deployment(2, "b", func(d *v2.FirewallDeployment) {
					d.Status.UpdatedReplicas, d.Status.UpdatedReadyReplicas, d.Status.ReadyReplicas = 2, 2, 2
				}),
				Sets:      []v2.FirewallSet{oldSet, newSet},
				Firewalls: []v2.Firewall{firewall("old-1", oldSet, true)},
			},
			contains: []string{"1 old firewalls are pending termination"},
		},
		{
			name: "done: history sets without firewalls do not hold it up",
			snapshot: Snapshot{
				Deployment: deployment(2, "b", func(d *v2.FirewallDeployment) {
					d.Status.UpdatedReplicas, d.Status.UpdatedReadyReplicas, d.Status.ReadyReplicas = 2, 2, 2
				}),
				Sets:      []v2.FirewallSet{oldSet, newSet},
				Firewalls: []v2.Firewall{firewall("new-1", newSet, true), firewall("new-2", newSet, true)},
			},
			done:     true,
			contains: []string{"successfully rolled out"},
		},
		{
			name: "paused is said, not done",
			snapshot: Snapshot{
				Deployment: deployment(2, "b", func(d *v2.FirewallDeployment) { d.Annotations = map[string]string{v2.PausedAnnotation: "true"} }),
				Sets:       []v2.FirewallSet{newSet},
			},
			contains: []string{"is paused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RolloutStatus(tt.snapshot)
			if got.Done != tt.done || got.Failed != tt.fail {
				t.Fatalf("done=%v failed=%v, want done=%v failed=%v\n%s", got.Done, got.Failed, tt.done, tt.fail, got.Message)
			}
			for _, want := range tt.contains {
				if !strings.Contains(got.Message, want) {
					t.Errorf("message lacks %q:\n%s", want, got.Message)
				}
			}
		})
	}
}

func TestHistoryIsOrderedAndMarksCurrent(t *testing.T) {
	s := Snapshot{Deployment: deployment(1, "c"), Sets: []v2.FirewallSet{set(3, "c", 1, 1), set(1, "a", 0, 0), set(2, "b", 0, 0)}}
	s.Sets[1].Annotations[ChangeCauseAnnotation] = "first image"
	revs := History(s)
	if len(revs) != 3 {
		t.Fatalf("got %d revisions", len(revs))
	}
	for i, want := range []string{"a", "b", "c"} {
		if revs[i].Image != want || revs[i].Number != i+1 {
			t.Errorf("row %d = %+v, want image %s revision %d", i, revs[i], want, i+1)
		}
	}
	if !revs[2].Current || revs[0].Current || revs[1].Current {
		t.Errorf("only revision 3 is current: %+v", revs)
	}
	if revs[0].ChangeCause != "first image" {
		t.Errorf("change cause not shown: %+v", revs[0])
	}
}

func TestUndoTemplate(t *testing.T) {
	history := []v2.FirewallSet{set(1, "a", 0, 0), set(2, "b", 0, 0), set(3, "c", 1, 1)}
	tests := []struct {
		name       string
		deploy     *v2.FirewallDeployment
		sets       []v2.FirewallSet
		toRevision int
		wantImage  string
		wantRev    int
		wantErr    string
	}{
		{name: "previous revision by default", deploy: deployment(1, "c"), sets: history, toRevision: PreviousRevision, wantImage: "b", wantRev: 2},
		{name: "revision 0 is a revision", deploy: deployment(1, "c"), sets: append([]v2.FirewallSet{set(0, "z", 0, 0)}, history...), toRevision: 0, wantImage: "z", wantRev: 0},
		{name: "a named revision", deploy: deployment(1, "c"), sets: history, toRevision: 1, wantImage: "a", wantRev: 1},
		{name: "missing revision names the kept ones", deploy: deployment(1, "c"), sets: history, toRevision: 7, wantErr: "revisions kept: 1, 2, 3"},
		{name: "no history", deploy: deployment(1, "c"), sets: history[2:], toRevision: PreviousRevision, wantErr: "no rollout history"},
		{name: "no sets", deploy: deployment(1, "c"), toRevision: PreviousRevision, wantErr: "has no revisions"},
		{name: "already at that spec", deploy: deployment(1, "b"), sets: history, toRevision: 2, wantErr: "skipped rollback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, rev, err := UndoTemplate(Snapshot{Deployment: tt.deploy, Sets: tt.sets}, tt.toRevision)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tmpl.Spec.Image != tt.wantImage || rev != tt.wantRev {
				t.Fatalf("image %s revision %d, want %s %d", tmpl.Spec.Image, rev, tt.wantImage, tt.wantRev)
			}
			if _, ok := tmpl.ObjectMeta.Labels[fwutil.DeploymentLabel]; ok {
				t.Error("the controller's label leaked into the deployment template")
			}
			if tmpl.ObjectMeta.Labels["purpose"] != "edge" {
				t.Error("the deployment's own template labels were lost")
			}
		})
	}
}
