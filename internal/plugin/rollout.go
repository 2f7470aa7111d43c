// Package plugin is `kubectl palisade`: rollout control for FirewallDeployments in kubectl's
// conventions. The decisions (is the rollout done, which revision does undo restore) are pure
// functions over a Snapshot, so they are table-tested without an API server; the commands only
// read a Snapshot, decide, and write one patch.
package plugin

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
)

// Snapshot is what the plugin reads about one FirewallDeployment: the deployment, the sets it
// controls and the firewalls those sets control.
type Snapshot struct {
	Deployment *v2.FirewallDeployment
	Sets       []v2.FirewallSet
	Firewalls  []v2.Firewall
}

// controlledBy reports whether obj's controller reference names owner.
func controlledBy(refs []metav1.OwnerReference, uid string) bool {
	for _, ref := range refs {
		if ref.Controller != nil && *ref.Controller && string(ref.UID) == uid {
			return true
		}
	}
	return false
}

// latestSet is the set with the highest revision, nil when there is none.
func (s Snapshot) latestSet() *v2.FirewallSet {
	var latest *v2.FirewallSet
	for i := range s.Sets {
		if latest == nil || fwutil.Revision(&s.Sets[i]) > fwutil.Revision(latest) {
			latest = &s.Sets[i]
		}
	}
	return latest
}

// firewallsOf returns the firewalls controlled by set, by name.
func (s Snapshot) firewallsOf(set *v2.FirewallSet) []v2.Firewall {
	var out []v2.Firewall
	for _, fw := range s.Firewalls {
		if controlledBy(fw.OwnerReferences, string(set.UID)) {
			out = append(out, fw)
		}
	}
	slices.SortFunc(out, func(a, b v2.Firewall) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Status is the answer to "is the rollout done?".
type Status struct {
	// Message is kubectl-style: one headline, then one line per firewall.
	Message string
	// Done: the latest set has all replicas ready and no old set holds a firewall.
	Done bool
	// Failed: the rollout exceeded its progress deadline; Message says why.
	Failed bool
}

// RolloutStatus decides whether the deployment's rollout is complete, still going or failed,
// in the order kubectl's Deployment status viewer uses.
func RolloutStatus(s Snapshot) Status {
	d := s.Deployment
	name := d.Name
	if d.Generation > d.Status.ObservedGeneration {
		return Status{Message: fmt.Sprintf("Waiting for firewall deployment %q spec update to be observed...", name)}
	}
	if c := meta.FindStatusCondition(d.Status.Conditions, v2.ConditionProgressing); c != nil && c.Reason == v2.ReasonProgressDeadlineExceeded {
		return Status{Failed: true, Message: fmt.Sprintf("firewall deployment %q exceeded its progress deadline: %s", name, c.Message)}
	}
	var headline string
	done := false
	latest := s.latestSet()
	oldFirewalls := 0
	for i := range s.Sets {
		if &s.Sets[i] != latest {
			oldFirewalls += len(s.firewallsOf(&s.Sets[i]))
		}
	}
	want := d.Spec.Replicas
	switch {
	case v2.IsPaused(d.Annotations):
		headline = fmt.Sprintf("Firewall deployment %q is paused: resume it with `kubectl palisade rollout resume`", name)
	case latest == nil:
		headline = fmt.Sprintf("Waiting for firewall deployment %q to create its first firewall set...", name)
	case d.Status.UpdatedReplicas < want:
		headline = fmt.Sprintf("Waiting for firewall deployment %q rollout to finish: %d out of %d new firewalls have been created...", name, d.Status.UpdatedReplicas, want)
	case d.Status.UpdatedReadyReplicas < want:
		headline = fmt.Sprintf("Waiting for firewall deployment %q rollout to finish: %d of %d new firewalls are ready...", name, d.Status.UpdatedReadyReplicas, want)
	case oldFirewalls > 0:
		headline = fmt.Sprintf("Waiting for firewall deployment %q rollout to finish: %d old firewalls are pending termination...", name, oldFirewalls)
	default:
		headline = fmt.Sprintf("firewall deployment %q successfully rolled out", name)
		done = true
	}
	lines := []string{headline}
	if !done {
		sets := slices.Clone(s.Sets)
		slices.SortFunc(sets, func(a, b v2.FirewallSet) int { return fwutil.Revision(&b) - fwutil.Revision(&a) })
		for i := range sets {
			role := "old"
			if latest != nil && sets[i].UID == latest.UID {
				role = "new"
			}
			for _, fw := range s.firewallsOf(&sets[i]) {
				lines = append(lines, fmt.Sprintf("  %s firewall %s (revision %d): %s", role, fw.Name, fwutil.Revision(&sets[i]), describeFirewall(&fw)))
			}
		}
	}
	return Status{Message: strings.Join(lines, "\n"), Done: done}
}

// describeFirewall is "<phase>, ready|not ready (<reason>: <message>)".
func describeFirewall(fw *v2.Firewall) string {
	phase := string(fw.Status.Phase)
	if phase == "" {
		phase = "Pending"
	}
	if fw.DeletionTimestamp != nil {
		phase = string(v2.FirewallPhaseDeleting)
	}
	c := meta.FindStatusCondition(fw.Status.Conditions, v2.ConditionReady)
	switch {
	case c == nil:
		return phase + ", not ready"
	case c.Status == "True":
		return phase + ", ready"
	case c.Message != "":
		return fmt.Sprintf("%s, not ready (%s: %s)", phase, c.Reason, c.Message)
	default:
		return fmt.Sprintf("%s, not ready (%s)", phase, c.Reason)
	}
}

// Revision is one row of `rollout history`.
type Revision struct {
	Number   int
	Set      string
	Image    string
	Size     string
	Replicas int
	Ready    int
	Current  bool
	Created  time.Time
	// ChangeCause is the set's kubernetes.io/change-cause annotation, as kubectl shows it.
	ChangeCause string
}

// ChangeCauseAnnotation is the annotation kubectl records a change's cause in.
const ChangeCauseAnnotation = "kubernetes.io/change-cause"

// History lists the deployment's revisions, oldest first.
func History(s Snapshot) []Revision {
	latest := s.latestSet()
	out := make([]Revision, 0, len(s.Sets))
	for i := range s.Sets {
		set := &s.Sets[i]
		out = append(out, Revision{
			Number:      fwutil.Revision(set),
			Set:         set.Name,
			Image:       set.Spec.Template.Spec.Image,
			Size:        set.Spec.Template.Spec.Size,
			Replicas:    set.Spec.Replicas,
			Ready:       set.Status.ReadyReplicas,
			Current:     latest != nil && set.UID == latest.UID,
			Created:     set.CreationTimestamp.Time,
			ChangeCause: set.Annotations[ChangeCauseAnnotation],
		})
	}
	slices.SortFunc(out, func(a, b Revision) int { return a.Number - b.Number })
	return out
}

// SetForRevision returns the set of a revision, or an error naming the revisions there are.
func SetForRevision(s Snapshot, revision int) (*v2.FirewallSet, error) {
	var have []string
	for i := range s.Sets {
		if fwutil.Revision(&s.Sets[i]) == revision {
			return &s.Sets[i], nil
		}
		have = append(have, fmt.Sprint(fwutil.Revision(&s.Sets[i])))
	}
	slices.Sort(have)
	return nil, fmt.Errorf("revision %d not found (revisions kept: %s; raise spec.revisionHistoryLimit to keep more)", revision, orNone(have))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// PreviousRevision asks UndoTemplate for the newest revision before the current one. Palisade's
// revisions start at 0, so kubectl's "0 means previous" cannot be used.
const PreviousRevision = -1

// UndoTemplate decides what `rollout undo` writes: the firewall spec of revision toRevision, or
// of the newest revision before the current one when toRevision is PreviousRevision. As for a Deployment, undo
// is a new rollout: the old spec is copied into the deployment's template and the controller
// rolls to it (a new revision). The template's metadata stays as it is, because the
// deployment's selector is built from its labels.
func UndoTemplate(s Snapshot, toRevision int) (*v2.FirewallTemplateSpec, int, error) {
	latest := s.latestSet()
	if latest == nil {
		return nil, 0, fmt.Errorf("firewall deployment %q has no revisions", s.Deployment.Name)
	}
	var target *v2.FirewallSet
	if toRevision == PreviousRevision {
		for i := range s.Sets {
			set := &s.Sets[i]
			if set.UID == latest.UID {
				continue
			}
			if target == nil || fwutil.Revision(set) > fwutil.Revision(target) {
				target = set
			}
		}
		if target == nil {
			return nil, 0, fmt.Errorf("no rollout history found for firewall deployment %q (raise spec.revisionHistoryLimit to keep old revisions)", s.Deployment.Name)
		}
	} else {
		var err error
		if target, err = SetForRevision(s, toRevision); err != nil {
			return nil, 0, err
		}
	}
	tmpl := s.Deployment.Spec.Template.DeepCopy()
	tmpl.Spec = *target.Spec.Template.Spec.DeepCopy()
	if equality.Semantic.DeepEqual(tmpl.Spec, s.Deployment.Spec.Template.Spec) {
		return nil, fwutil.Revision(target), fmt.Errorf("skipped rollback: firewall deployment %q already runs the spec of revision %d", s.Deployment.Name, fwutil.Revision(target))
	}
	return tmpl, fwutil.Revision(target), nil
}
