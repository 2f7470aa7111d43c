package firewalldeployment

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
)

// setStatus copies the latest set's counts (as upstream) and adds the kubectl-style counts:
// updated (latest set) and available (ready across all sets, which is what carries traffic
// during a rolling update).
func (r *Reconciler) setStatus(deploy *v2.FirewallDeployment, sets []*v2.FirewallSet) {
	sortByRevision(sets)
	s := &deploy.Status
	s.AvailableReplicas = 0
	for _, set := range sets {
		s.AvailableReplicas += set.Status.ReadyReplicas
	}
	selector := deploy.Spec.Selector
	if len(selector) == 0 {
		selector = map[string]string{fwutil.DeploymentLabel: deploy.Name}
	}
	s.Selector = labels.SelectorFromSet(selector).String()
	if len(sets) > 0 {
		latest := sets[len(sets)-1]
		s.TargetReplicas = latest.Status.TargetReplicas
		s.ReadyReplicas = latest.Status.ReadyReplicas
		s.ProgressingReplicas = latest.Status.ProgressingReplicas
		s.UnhealthyReplicas = latest.Status.UnhealthyReplicas
		s.UpdatedReplicas = latest.Status.ReadyReplicas + latest.Status.ProgressingReplicas + latest.Status.UnhealthyReplicas
		s.ObservedRevision = max(fwutil.Revision(latest), 0)
	} else {
		s.TargetReplicas, s.ReadyReplicas, s.ProgressingReplicas, s.UnhealthyReplicas, s.UpdatedReplicas = 0, 0, 0, 0, 0
	}
	msg := fmt.Sprintf("%d of %d firewalls available", s.AvailableReplicas, deploy.Spec.Replicas)
	if s.AvailableReplicas >= deploy.Spec.Replicas {
		setCondition(deploy, v2.ConditionAvailable, true, v2.ReasonMinimumReplicasAvailable, msg)
	} else {
		setCondition(deploy, v2.ConditionAvailable, false, v2.ReasonMinimumReplicasUnavail, msg)
	}
}
