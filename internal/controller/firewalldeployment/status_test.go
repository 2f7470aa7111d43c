package firewalldeployment

import (
	"maps"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
)

func statusSet(name string, revision, replicas, ready, progressing int, conds ...metav1.Condition) *v2.FirewallSet {
	return &v2.FirewallSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{v2.RevisionAnnotation: strconv.Itoa(revision)}},
		Spec:       v2.FirewallSetSpec{Replicas: replicas},
		Status: v2.FirewallSetStatus{TargetReplicas: replicas, ReadyReplicas: ready, ProgressingReplicas: progressing,
			Conditions: conds},
	}
}

func TestSetStatusCountsOldSetsAsADeploymentDoes(t *testing.T) {
	allocFailed := metav1.Condition{Type: v2.ConditionFirewallsCreated, Status: metav1.ConditionFalse, Reason: v2.ReasonAllocationFailed,
		Message: "firewall fw-new-x: metal-api allocation failed: metal-api firewall-allocate: 404 Not Found: project p9 not found"}
	for _, tc := range []struct {
		name                                            string
		replicas                                        int
		sets                                            []*v2.FirewallSet
		ready, available, updated, updatedReady, target int
		availableStatus                                 metav1.ConditionStatus
		availableMessage                                string
	}{
		{name: "no set yet", replicas: 1, availableStatus: metav1.ConditionFalse, availableMessage: "0 of 1 firewalls available"},
		{
			name: "mid-roll: the old set's firewalls carry the traffic and count as ready", replicas: 2,
			sets:  []*v2.FirewallSet{statusSet("old", 0, 2, 2, 0), statusSet("new", 1, 2, 0, 2)},
			ready: 2, available: 2, updated: 2, updatedReady: 0, target: 2,
			availableStatus: metav1.ConditionTrue, availableMessage: "2 of 2 firewalls available",
		},
		{
			name: "half-way", replicas: 2,
			sets:  []*v2.FirewallSet{statusSet("old", 0, 2, 2, 0), statusSet("new", 1, 2, 1, 1)},
			ready: 3, available: 3, updated: 2, updatedReady: 1, target: 2,
			availableStatus: metav1.ConditionTrue, availableMessage: "3 of 2 firewalls available",
		},
		{
			name: "rolled: history holds nothing", replicas: 1,
			sets:  []*v2.FirewallSet{statusSet("old", 0, 0, 0, 0), statusSet("new", 1, 1, 1, 0)},
			ready: 1, available: 1, updated: 1, updatedReady: 1, target: 1,
			availableStatus: metav1.ConditionTrue, availableMessage: "1 of 1 firewalls available",
		},
		{
			name: "nothing ready: the allocation error is in the Available message", replicas: 1,
			sets:    []*v2.FirewallSet{statusSet("new", 0, 1, 0, 1, allocFailed)},
			updated: 1, target: 1,
			availableStatus: metav1.ConditionFalse,
			availableMessage: "0 of 1 firewalls available; set new: firewall fw-new-x: metal-api allocation failed: " +
				"metal-api firewall-allocate: 404 Not Found: project p9 not found",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &v2.FirewallDeployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Generation: 3}, Spec: v2.FirewallDeploymentSpec{Replicas: tc.replicas}}
			(&Reconciler{}).setStatus(d, tc.sets)
			s := d.Status
			if s.ReadyReplicas != tc.ready || s.AvailableReplicas != tc.available || s.UpdatedReplicas != tc.updated ||
				s.UpdatedReadyReplicas != tc.updatedReady || s.TargetReplicas != tc.target {
				t.Errorf("ready %d available %d updated %d updatedReady %d target %d, want %d %d %d %d %d", s.ReadyReplicas, s.AvailableReplicas,
					s.UpdatedReplicas, s.UpdatedReadyReplicas, s.TargetReplicas, tc.ready, tc.available, tc.updated, tc.updatedReady, tc.target)
			}
			c := meta.FindStatusCondition(s.Conditions, v2.ConditionAvailable)
			if c == nil || c.Status != tc.availableStatus || c.Message != tc.availableMessage {
				t.Errorf("Available = %+v, want %s %q", c, tc.availableStatus, tc.availableMessage)
			}
			if fc := meta.FindStatusCondition(s.Conditions, v2.ConditionFirewallsCreated); fc == nil || fc.ObservedGeneration != 3 {
				t.Errorf("FirewallsCreated = %+v, want one for generation 3", fc)
			}
		})
	}
}

func TestProgressDeadlineCountsFromWhenTheSetBecameTheTarget(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	for _, tc := range []struct {
		name        string
		created     time.Duration // relative to now
		targetSince string
		exceeded    bool
	}{
		{name: "a new set within its deadline", created: -5 * time.Minute},
		{name: "a new set past its deadline", created: -20 * time.Minute, exceeded: true},
		{name: "a history set brought back a minute ago (rollback)", created: -30 * 24 * time.Hour, targetSince: at(-time.Minute)},
		{name: "brought back, then stuck past the deadline", created: -30 * 24 * time.Hour, targetSince: at(-11 * time.Minute), exceeded: true},
		{name: "a mark older than the set is ignored", created: -20 * time.Minute, targetSince: at(-time.Hour), exceeded: true},
		{name: "a malformed mark is ignored", created: -20 * time.Minute, targetSince: "yesterday", exceeded: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := statusSet("s", 2, 1, 0, 1)
			set.CreationTimestamp = metav1.NewTime(now.Add(tc.created))
			if tc.targetSince != "" {
				set.Annotations[v2.TargetSinceAnnotation] = tc.targetSince
			}
			d := &v2.FirewallDeployment{Spec: v2.FirewallDeploymentSpec{Replicas: 1, ProgressDeadlineSeconds: ptr.To[int32](600)}}
			r := &Reconciler{Now: func() time.Time { return now }, ProgressDeadline: time.Hour}
			result := r.waitForProgress(d, set, "waiting")
			c := meta.FindStatusCondition(d.Status.Conditions, v2.ConditionProgressing)
			if exceeded := c.Reason == v2.ReasonProgressDeadlineExceeded; exceeded != tc.exceeded {
				t.Errorf("Progressing %s %s %q, want exceeded=%v", c.Status, c.Reason, c.Message, tc.exceeded)
			}
			if !tc.exceeded && (result.RequeueAfter <= 0 || result.RequeueAfter > 10*time.Minute) {
				t.Errorf("requeue after %s, want within the deadline", result.RequeueAfter)
			}
		})
	}
}

func TestSetLabelsFollowTheTemplate(t *testing.T) {
	deploy := &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Labels: map[string]string{"team": "net", "app": "from-deployment"}},
		Spec: v2.FirewallDeploymentSpec{Template: v2.FirewallTemplateSpec{ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{"app": "edge", "tier": "gold"},
		}}},
	}
	set := &v2.FirewallSet{Spec: v2.FirewallSetSpec{
		Selector: map[string]string{"app": "edge", fwutil.DeploymentLabel: "edge"},
		Template: v2.FirewallTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "edge", fwutil.DeploymentLabel: "edge", "old": "x"}}},
	}}
	got := targetTemplateLabels(deploy, set)
	want := map[string]string{"app": "edge", "tier": "gold", fwutil.DeploymentLabel: "edge"}
	if !maps.Equal(got, want) {
		t.Errorf("target template labels %v, want %v (the deployment's, the selector kept)", got, want)
	}
	set.Spec.Template.ObjectMeta.Labels = got
	if got, want := setLabels(deploy, set), map[string]string{"team": "net", "app": "edge", "tier": "gold", fwutil.DeploymentLabel: "edge"}; !maps.Equal(got, want) {
		t.Errorf("set labels %v, want %v (the template's over the deployment's)", got, want)
	}

	// A template that dropped a selector label (the webhook refuses it; an upstream set has no
	// selector of its own) still leaves the firewalls matched.
	deploy.Spec.Template.ObjectMeta.Labels = map[string]string{"tier": "gold"}
	set.Spec.Selector = nil
	set.Spec.Template.ObjectMeta.Labels = map[string]string{"app": "edge"}
	if got, want := targetTemplateLabels(deploy, set), map[string]string{"app": "edge", "tier": "gold", fwutil.DeploymentLabel: "edge"}; !maps.Equal(got, want) {
		t.Errorf("target template labels %v, want %v (the effective selector kept)", got, want)
	}
}
