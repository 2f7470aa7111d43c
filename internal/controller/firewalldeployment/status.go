package firewalldeployment

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
)

// setStatus counts as a Deployment does over its ReplicaSets: ready and available are the ready
// firewalls of all sets (the old set's carry the traffic during a rolling update), updated and
// updatedReady those of the latest set; target, progressing and unhealthy are the latest set's,
// as upstream. The newest allocation error of the sets is surfaced in FirewallsCreated and, while
// not enough firewalls are available, in the Available message.
func (r *Reconciler) setStatus(deploy *v2.FirewallDeployment, sets []*v2.FirewallSet) {
	sortByRevision(sets)
	s := &deploy.Status
	s.ReadyReplicas = 0
	for _, set := range sets {
		s.ReadyReplicas += set.Status.ReadyReplicas
	}
	s.AvailableReplicas = s.ReadyReplicas
	selector := deploy.Spec.Selector
	if len(selector) == 0 {
		selector = map[string]string{fwutil.DeploymentLabel: deploy.Name}
	}
	s.Selector = labels.SelectorFromSet(selector).String()
	if len(sets) > 0 {
		latest := sets[len(sets)-1]
		s.TargetReplicas = latest.Status.TargetReplicas
		s.UpdatedReadyReplicas = latest.Status.ReadyReplicas
		s.ProgressingReplicas = latest.Status.ProgressingReplicas
		s.UnhealthyReplicas = latest.Status.UnhealthyReplicas
		s.UpdatedReplicas = latest.Status.ReadyReplicas + latest.Status.ProgressingReplicas + latest.Status.UnhealthyReplicas
		s.ObservedRevision = max(fwutil.Revision(latest), 0)
	} else {
		s.TargetReplicas, s.UpdatedReadyReplicas, s.ProgressingReplicas, s.UnhealthyReplicas, s.UpdatedReplicas = 0, 0, 0, 0, 0
	}
	created := fwutil.DeploymentFirewallsCreated(sets)
	created.ObservedGeneration = deploy.Generation
	meta.SetStatusCondition(&s.Conditions, created)
	msg := fmt.Sprintf("%d of %d firewalls available", s.AvailableReplicas, deploy.Spec.Replicas)
	if s.AvailableReplicas >= deploy.Spec.Replicas {
		setCondition(deploy, v2.ConditionAvailable, true, v2.ReasonMinimumReplicasAvailable, msg)
		return
	}
	if created.Reason == v2.ReasonAllocationFailed {
		msg += "; " + created.Message
	}
	setCondition(deploy, v2.ConditionAvailable, false, v2.ReasonMinimumReplicasUnavail, msg)
}
