package firewall

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// setAgentConditions derives Connected, SeedConnected and Distance from what the agent reported.
// Connected means "rules for the current spec applied recently", not "process alive".
func (r *Reconciler) setAgentConditions(fw *v2.Firewall) {
	if v2.IsTrue(fw.Annotations, v2.NoControllerConnectionAnnotation) {
		msg := "not checked: " + v2.NoControllerConnectionAnnotation + " is set"
		for _, c := range []string{v2.ConditionConnected, v2.ConditionSeedConnected, v2.ConditionDistance} {
			r.setCondition(fw, c, true, v2.ReasonNotChecking, msg)
		}
		return
	}
	cs := fw.Status.ControllerStatus
	if cs == nil {
		r.setCondition(fw, v2.ConditionConnected, false, v2.ReasonNotConnected, "the agent has not reported yet")
		r.setCondition(fw, v2.ConditionSeedConnected, false, v2.ReasonNotConnected, "the agent has not reported yet")
		r.setCondition(fw, v2.ConditionDistance, false, v2.ReasonNotConnected, "the agent has not reported yet")
		return
	}
	now := r.Now()
	switch {
	case cs.RulesApplied != nil && !*cs.RulesApplied:
		r.setCondition(fw, v2.ConditionConnected, false, v2.ReasonRulesFailed, "the agent failed to apply its rules: "+cs.Message)
	case cs.Updated.IsZero() || now.Sub(cs.Updated.Time) > r.Config.ConnectedThreshold:
		r.setCondition(fw, v2.ConditionConnected, false, v2.ReasonStoppedReconciling,
			fmt.Sprintf("the agent last applied rules at %s, longer ago than %s", cs.Updated.UTC().Format("2006-01-02T15:04:05Z"), r.Config.ConnectedThreshold))
	case cs.ObservedGeneration != 0 && cs.ObservedGeneration < fw.Generation:
		r.setCondition(fw, v2.ConditionConnected, false, v2.ReasonNotConnected,
			fmt.Sprintf("the agent applied generation %d, waiting for %d", cs.ObservedGeneration, fw.Generation))
	default:
		r.setCondition(fw, v2.ConditionConnected, true, v2.ReasonConnected, "the agent applied the current rules")
	}
	if cs.SeedUpdated.IsZero() || now.Sub(cs.SeedUpdated.Time) > r.Config.SeedConnectedThreshold {
		r.setCondition(fw, v2.ConditionSeedConnected, false, v2.ReasonStoppedReconciling,
			fmt.Sprintf("the agent has not reconciled against the seed within %s", r.Config.SeedConnectedThreshold))
	} else {
		r.setCondition(fw, v2.ConditionSeedConnected, true, v2.ReasonConnected, "the agent reconciles against the seed")
	}
	if cs.DistanceSupported != nil && !*cs.DistanceSupported {
		r.setCondition(fw, v2.ConditionDistance, true, v2.ReasonNotChecking, "not checked: the agent cannot configure a distance on this firewall")
	} else if cs.ActualDistance == fw.Distance {
		r.setCondition(fw, v2.ConditionDistance, true, v2.ReasonConfigured, fmt.Sprintf("distance %d configured", fw.Distance))
	} else {
		r.setCondition(fw, v2.ConditionDistance, false, v2.ReasonNotConfigured,
			fmt.Sprintf("the agent configured distance %d, want %d", cs.ActualDistance, fw.Distance))
	}
}

// setProvisioned latches Provisioned once the firewall was fully ready; it is never reset, so a
// later degradation is measured against the health timeout instead of the create timeout.
func (r *Reconciler) setProvisioned(fw *v2.Firewall) {
	if meta.IsStatusConditionTrue(fw.Status.Conditions, v2.ConditionProvisioned) {
		return
	}
	for _, c := range []string{v2.ConditionCreated, v2.ConditionReady, v2.ConditionConnected, v2.ConditionSeedConnected, v2.ConditionDistance} {
		if !meta.IsStatusConditionTrue(fw.Status.Conditions, c) {
			r.setCondition(fw, v2.ConditionProvisioned, false, v2.ReasonNotProvisioned, "waiting for "+c)
			return
		}
	}
	r.setCondition(fw, v2.ConditionProvisioned, true, v2.ReasonProvisioned, "the firewall was ready")
}

func (r *Reconciler) setUserdataCondition(fw *v2.Firewall, err error) {
	if err == nil {
		r.setCondition(fw, v2.ConditionUserdataReady, true, v2.ReasonUserdataRendered, "userdata rendered")
		return
	}
	var ue *UserdataError
	if errors.As(err, &ue) {
		r.setCondition(fw, v2.ConditionUserdataReady, false, ue.Reason, ue.Message)
		return
	}
	r.setCondition(fw, v2.ConditionUserdataReady, false, "RenderError", err.Error())
}
