package model_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
)

// The PolicyComposer returns exactly what ComposePolicies returns, through random sequences
// of changes made in place (as a caller reusing its inputs would), duplicates, refused specs
// and changes of allowedNetworks.
func TestPolicyComposerEqualsComposePolicies(t *testing.T) {
	large, _ := fixture.Large(40, 200, 0)
	base := append(fixture.Policies(), large...)
	allowed := []*model.Allowed{nil,
		{Egress: []netip.Prefix{netip.MustParsePrefix("20.0.0.0/8"), netip.MustParsePrefix("::/0")}, Ingress: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}},
		{Egress: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}}
	ptr := func(v int32) *int32 { return &v }
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 5))
		pols := slices.Clone(base)
		for i := range pols { // own copies, changed in place below
			pols[i].Spec.Egress = slices.Clone(pols[i].Spec.Egress)
			for j := range pols[i].Spec.Egress {
				pols[i].Spec.Egress[j].To = slices.Clone(pols[i].Spec.Egress[j].To)
				pols[i].Spec.Egress[j].Ports = slices.Clone(pols[i].Spec.Egress[j].Ports)
			}
		}
		var c model.PolicyComposer
		fw := fixture.Firewall()
		for step := range 80 {
			p := &pols[rng.IntN(len(pols))]
			switch rng.IntN(7) {
			case 0, 1:
				if len(p.Spec.Egress) > 0 && len(p.Spec.Egress[0].To) > 0 {
					p.Spec.Egress[0].To[0].CIDR = fmt.Sprintf("20.%d.%d.0/24", rng.IntN(4), rng.IntN(256))
				}
			case 2:
				if len(p.Spec.Egress) > 0 && len(p.Spec.Egress[0].Ports) > 0 {
					*p.Spec.Egress[0].Ports[0].Port = int32(rng.IntN(70000)) // sometimes refused
				}
			case 3: // a duplicate, same or different spec
				d := *p
				if rng.IntN(2) == 0 {
					d.Spec = model.PolicySpec{Egress: []model.EgressRule{{Ports: []model.PolicyPort{{Port: ptr(1)}}}}}
				}
				pols = append(pols, d)
			case 4:
				if len(pols) > 2 {
					i := rng.IntN(len(pols))
					pols = slices.Delete(pols, i, i+1)
				}
			case 5:
				fw.Allowed = allowed[rng.IntN(len(allowed))]
			case 6:
				p.Generation++
			}
			gotP, gotV := c.Compose(fw, pols)
			wantP, wantV := model.ComposePolicies(fw, pols)
			if !reflect.DeepEqual(gotP, wantP) || !reflect.DeepEqual(gotV, wantV) {
				t.Fatalf("seed %d step %d: the composer differs from ComposePolicies", seed, step)
			}
		}
	}
}
