package verdict

import (
	"fmt"
	"slices"

	"github.com/palisade-fw/palisade/internal/agent/model"
)

// Inputs are the objects the agent composes, as its sources deliver them.
type Inputs struct {
	Firewall model.Firewall
	Policies []model.PolicyInput
	Services []model.ServiceInput
	// DefaultEgress adds the seed's default egress (model.DefaultEgress), as the agent does
	// unless its config says nftables.defaultEgress: false.
	DefaultEgress bool
	// Learned are the addresses the DNS proxy learned for toFQDNs rules.
	Learned Learned
}

// Compose composes the inputs the way the agent's runner does before it renders.
func (in Inputs) Compose() (model.Snapshot, []model.Verdict) {
	policies := in.Policies
	if in.DefaultEgress {
		policies = append(slices.Clip(policies), model.DefaultEgress())
	}
	return model.Compose(in.Firewall, policies, in.Services)
}

// Explain composes the inputs, evaluates the flow and adds what an operator needs to
// understand the verdict: the allowedNetworks cap of the flow's direction, and for a drop the
// rule that would allow it without the cap and the objects the agent refused.
func Explain(in Inputs, f Flow) Result {
	snap, verdicts := in.Compose()
	res := Evaluate(snap, in.Learned, f)
	if len(in.Firewall.ClusterPrefixes) == 0 {
		res.Notes = append(res.Notes, "the firewall knows no cluster prefix (no private primary network in status.firewallNetworks, no clusterPrefixes or internalPrefixes): nothing counts as egress")
	}
	if in.Firewall.DryRun {
		res.Notes = append(res.Notes, "the Firewall has spec.dryRun: the agent renders this ruleset but does not apply it")
	}
	for _, w := range in.Firewall.Warnings {
		res.Notes = append(res.Notes, "firewall spec: "+w)
	}
	if a := in.Firewall.Allowed; a != nil {
		capped := a.Egress
		if res.Direction == Ingress {
			capped = a.Ingress
		}
		res.Notes = append(res.Notes, fmt.Sprintf("allowedNetworks.%s caps what policies and services open: %s", res.Direction, describe(capped)))
		if !res.Allowed {
			uncapped := in
			uncapped.Firewall.Allowed = nil
			usnap, _ := uncapped.Compose()
			if u := Evaluate(usnap, in.Learned, f); u.Allowed {
				why := "narrows it"
				for _, v := range verdicts {
					if !v.Accepted && policyObjectOrService(v) == u.By.Object {
						why = "refuses the object: " + v.Message
					}
				}
				res.Notes = append(res.Notes, fmt.Sprintf("without allowedNetworks %s would allow it (%s); the cap %s", u.By, u.By.Allows, why))
			}
		}
	}
	if !res.Allowed {
		for _, v := range verdicts {
			if !v.Accepted {
				res.Notes = append(res.Notes, fmt.Sprintf("refused by the agent: %s: %s", policyObjectOrService(v), v.Message))
			}
		}
	}
	return res
}

func policyObjectOrService(v model.Verdict) string {
	if v.Kind == model.KindService {
		return "service/" + v.Key.Namespace + "/" + v.Key.Name
	}
	return policyObject(v.Key)
}
