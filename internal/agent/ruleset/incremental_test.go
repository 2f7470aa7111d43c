package ruleset_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// The incremental render (a Renderer reusing the CWNP map components of its last render)
// equals a full render, for random sequences of changes over the fixture inputs: CIDRs
// changed to neighbours, overlapping, nested and IPv6 blocks, excepts, ports and protocols,
// policies added, removed and renamed, and logging. This is what makes it safe to resolve
// only what a change touches.
func TestIncrementalEqualsFull(t *testing.T) {
	fw := fixture.Firewall()
	large, svcInputs := fixture.Large(60, 600, 20)
	services, _ := model.ComposeServices(fw, svcInputs)
	base := append(fixture.Policies(), large...)
	var usedShards map[string]bool
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 15))
		pols := clonePolicies(base)
		r := ruleset.NewRenderer(ruleset.Options{})
		for step := range 60 {
			mutate(rng, pols, step)
			if rng.IntN(8) == 0 && len(pols) > 2 { // remove a policy
				i := rng.IntN(len(pols))
				pols = slices.Delete(pols, i, i+1)
			}
			if rng.IntN(8) == 0 { // add a copy of a policy under a new name
				i := rng.IntN(len(pols))
				p := clonePolicies(pols[i : i+1])[0]
				p.Key.Name = fmt.Sprintf("added-%d-%d", seed, step)
				pols = append(pols, p)
			}
			f := fw
			f.LogAccepted = rng.IntN(10) == 0
			composed, _ := model.ComposePolicies(f, pols)
			snap := model.Snapshot{Firewall: f, Policies: composed, Services: services}
			got, want := r.Render(snap), ruleset.Render(snap, ruleset.Options{})
			if !got.Equal(want) {
				t.Fatalf("seed %d step %d: incremental render differs from the full one:\n%s", seed, step, firstDifference(got, want))
			}
			checkShards(t, got, &usedShards)
		}
	}
	// The changes must have gone through more than one shard of a map, or the comparison
	// says nothing about sharding.
	if len(usedShards) < ruleset.MapShards {
		t.Errorf("only %d shards of cwnp_egress_v4 ever held elements: %v", len(usedShards), usedShards)
	}
}

// checkShards checks the sharding of a render: every policy's elements of a CWNP map are in
// one shard (a change of one policy touches one shard), and it notes which shards of
// cwnp_egress_v4 hold elements.
func checkShards(t *testing.T, r *ruleset.Ruleset, used *map[string]bool) {
	t.Helper()
	if *used == nil {
		*used = map[string]bool{}
	}
	shardOf := map[string]string{} // "map owner" -> shard
	for _, s := range r.Sets {
		logical := ruleset.LogicalMap(s.Name)
		if logical == s.Name {
			continue
		}
		for _, e := range s.Elements {
			k := logical + " " + e.Value
			if prev, ok := shardOf[k]; ok && prev != s.Name {
				t.Fatalf("%s has elements in %s and %s", k, prev, s.Name)
			}
			shardOf[k] = s.Name
		}
		if logical == ruleset.MapEgress+"_v4" && len(s.Elements) > 0 {
			(*used)[s.Name] = true
		}
	}
}

// mutate changes one to three things of random policies.
func mutate(rng *rand.Rand, pols []model.PolicyInput, step int) {
	ptr := func(v int32) *int32 { return &v }
	cidrs := func() string {
		switch rng.IntN(7) {
		case 0: // a neighbour of the fixture's /24s
			return fmt.Sprintf("20.0.%d.0/24", rng.IntN(700))
		case 1: // a block over several policies' CIDRs
			return fmt.Sprintf("20.0.%d.0/22", 4*rng.IntN(160))
		case 2: // inside one
			return fmt.Sprintf("20.0.%d.%d/26", rng.IntN(600), 64*rng.IntN(4))
		case 3:
			return fmt.Sprintf("30.%d.%d.0/24", rng.IntN(3), rng.IntN(256))
		case 4:
			return fmt.Sprintf("2001:db8:%x::/48", rng.IntN(8))
		case 5:
			return "20.0.0.0/16"
		default:
			return fmt.Sprintf("20.0.%d.%d/32", rng.IntN(600), rng.IntN(256))
		}
	}
	for range 1 + rng.IntN(3) {
		p := &pols[rng.IntN(len(pols))]
		switch rng.IntN(7) {
		case 0, 1: // change, add or drop a CIDR
			if len(p.Spec.Egress) == 0 {
				p.Spec.Egress = []model.EgressRule{{Ports: []model.PolicyPort{{Port: ptr(443)}}}}
			}
			e := &p.Spec.Egress[rng.IntN(len(p.Spec.Egress))]
			switch {
			case len(e.To) > 0 && rng.IntN(3) == 0:
				e.To = slices.Delete(e.To, 0, 1)
			case len(e.To) > 0 && rng.IntN(2) == 0:
				e.To[rng.IntN(len(e.To))] = model.IPBlock{CIDR: cidrs()}
			default:
				e.To = append(e.To, model.IPBlock{CIDR: cidrs()})
			}
		case 2: // an except inside a block
			if len(p.Spec.Egress) > 0 && len(p.Spec.Egress[0].To) > 0 {
				b := &p.Spec.Egress[0].To[0]
				b.Except = []string{cidrs()} // refused unless inside the block: also a change
			}
		case 3: // ports
			proto := []string{"TCP", "UDP", "SCTP"}[rng.IntN(3)]
			first := int32(440 + rng.IntN(10))
			port := model.PolicyPort{Protocol: &proto, Port: ptr(first)}
			if rng.IntN(2) == 0 {
				port.EndPort = ptr(first + int32(rng.IntN(20)))
			}
			if len(p.Spec.Egress) > 0 {
				p.Spec.Egress[0].Ports = append(slices.Clone(p.Spec.Egress[0].Ports[:min(1, len(p.Spec.Egress[0].Ports))]), port)
			}
		case 4: // ingress
			if len(p.Spec.Ingress) == 0 {
				p.Spec.Ingress = []model.IngressRule{{Ports: []model.PolicyPort{{Port: ptr(22)}}, From: []model.IPBlock{{CIDR: cidrs()}}}}
			} else {
				p.Spec.Ingress = nil
			}
		case 5: // a new generation, same content: nothing to resolve again
			p.Generation = int64(step)
		case 6: // the same addresses and ports owned by another policy
			q := &pols[rng.IntN(len(pols))]
			p.Spec.Egress, q.Spec.Egress = q.Spec.Egress, p.Spec.Egress
		}
	}
}

// clonePolicies copies inputs deeply enough that mutate never changes the source.
func clonePolicies(in []model.PolicyInput) []model.PolicyInput {
	out := slices.Clone(in)
	for i := range out {
		s := &out[i].Spec
		s.Egress = slices.Clone(s.Egress)
		for j := range s.Egress {
			s.Egress[j].To = slices.Clone(s.Egress[j].To)
			s.Egress[j].Ports = slices.Clone(s.Egress[j].Ports)
		}
		s.Ingress = slices.Clone(s.Ingress)
		for j := range s.Ingress {
			s.Ingress[j].From = slices.Clone(s.Ingress[j].From)
		}
	}
	return out
}

func firstDifference(got, want *ruleset.Ruleset) string {
	for i := range min(len(got.Sets), len(want.Sets)) {
		g, w := got.Sets[i], want.Sets[i]
		if !slices.EqualFunc(g.Elements, w.Elements, func(a, b ruleset.Element) bool { return a.String() == b.String() }) {
			for j := range max(len(g.Elements), len(w.Elements)) {
				var a, b string
				if j < len(g.Elements) {
					a = g.Elements[j].String()
				}
				if j < len(w.Elements) {
					b = w.Elements[j].String()
				}
				if a != b {
					return fmt.Sprintf("set %s element %d: incremental %q, full %q (%d vs %d elements)", g.Name, j, a, b, len(g.Elements), len(w.Elements))
				}
			}
		}
	}
	return "outside the set elements:\n" + text(got) + "\n---\n" + text(want)
}
