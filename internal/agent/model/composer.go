package model

import "slices"

// PolicyComposer is ComposePolicies with a memory: a policy whose input (after duplicates are
// merged) equals its input of the last call, under the same allowedNetworks, is not parsed
// again; its result is reused. A change of one CWNP among 1,000 parses one. The results it
// returns share data with earlier ones: treat them as read-only. Not safe for concurrent use.
type PolicyComposer struct {
	allowed *Allowed
	last    map[ObjectKey]composedPolicy
}

type composedPolicy struct {
	in      policyInput // a deep copy: callers may reuse their inputs
	policy  Policy
	verdict Verdict
}

// Compose returns what ComposePolicies(fw, policies) returns.
func (c *PolicyComposer) Compose(fw Firewall, policies []PolicyInput) ([]Policy, []Verdict) {
	if c.last == nil || !sameAllowed(c.allowed, fw.Allowed) {
		c.last = map[ObjectKey]composedPolicy{}
		c.allowed = cloneAllowed(fw.Allowed)
	}
	next := make(map[ObjectKey]composedPolicy, len(policies))
	var out []Policy
	var verdicts []Verdict
	for _, in := range dedupePolicies(policies) {
		cp, ok := c.last[in.Key]
		if !ok || !sameInput(cp.in, in) {
			p, v := in.compose(fw.Allowed)
			cp = composedPolicy{in: policyInput{PolicyInput: clonePolicyInput(in.PolicyInput), merged: in.merged, refused: in.refused}, policy: p, verdict: v}
		}
		next[in.Key] = cp
		if cp.verdict.Accepted {
			out = append(out, cp.policy)
		}
		verdicts = append(verdicts, cp.verdict)
	}
	c.last = next
	SortByKey(out, func(p Policy) ObjectKey { return p.Key })
	return out, verdicts
}

func sameInput(a, b policyInput) bool {
	return a.merged == b.merged && a.refused == b.refused && EqualPolicyInputs([]PolicyInput{a.PolicyInput}, []PolicyInput{b.PolicyInput})
}

func sameAllowed(a, b *Allowed) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.Ingress, b.Ingress) && slices.Equal(a.Egress, b.Egress) &&
		(a.Ingress == nil) == (b.Ingress == nil) && (a.Egress == nil) == (b.Egress == nil)
}

func cloneAllowed(a *Allowed) *Allowed {
	if a == nil {
		return nil
	}
	return &Allowed{Ingress: slices.Clone(a.Ingress), Egress: slices.Clone(a.Egress)}
}

// clonePolicyInput copies everything EqualPolicyInputs compares.
func clonePolicyInput(in PolicyInput) PolicyInput {
	ports := func(ps []PolicyPort) []PolicyPort {
		out := slices.Clone(ps)
		for i, p := range out {
			out[i] = PolicyPort{Protocol: clonePtr(p.Protocol), Port: clonePtr(p.Port), EndPort: clonePtr(p.EndPort)}
		}
		return out
	}
	blocks := func(bs []IPBlock) []IPBlock {
		out := slices.Clone(bs)
		for i, b := range out {
			out[i].Except = slices.Clone(b.Except)
		}
		return out
	}
	s := &in.Spec
	s.Ingress = slices.Clone(s.Ingress)
	for i, r := range s.Ingress {
		s.Ingress[i] = IngressRule{Ports: ports(r.Ports), From: blocks(r.From)}
	}
	s.Egress = slices.Clone(s.Egress)
	for i, r := range s.Egress {
		s.Egress[i] = EgressRule{Ports: ports(r.Ports), To: blocks(r.To), ToFQDNs: slices.Clone(r.ToFQDNs)}
	}
	return in
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
