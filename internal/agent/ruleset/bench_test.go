package ruleset_test

import (
	"fmt"
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// BenchmarkRenderOneCWNPChange: the render of a one-CIDR change on the input, as
// BenchmarkApplyOneCWNPChange (internal/agent/nft) renders it, without the kernel.
func BenchmarkRenderOneCWNPChange(b *testing.B) {
	p, s := fixture.Large(1000, 10000, 2000)
	fw := fixture.Firewall()
	var composer model.PolicyComposer
	pols, _ := composer.Compose(fw, p)
	svcs, _ := model.ComposeServices(fw, s)
	rend := ruleset.NewRenderer(ruleset.Options{})
	rend.Render(model.Snapshot{Firewall: fw, Policies: pols, Services: svcs})
	i := 0
	for b.Loop() {
		i++
		p[7].Spec.Egress[0].To[0].CIDR = fmt.Sprintf("30.%d.%d.0/24", i/256%256, i%256)
		pols, _ := composer.Compose(fw, p)
		rend.Render(model.Snapshot{Firewall: fw, Policies: pols, Services: svcs})
	}
}
