package runner

import (
	"testing"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// BenchmarkUnchangedEvent: a CWNP or Service event that changes nothing the firewall uses
// (metadata, status): the source hands over the full lists again (fresh slices, equal
// content) and the runner compares them with what it has; no compose, no render, no apply,
// no sync (asserted).
func BenchmarkUnchangedEvent(b *testing.B) {
	p, s := fixture.Large(1000, 10000, 2000)
	r := New(&fakeApplier{calls: make(chan *ruleset.Ruleset, 10)}, Parts{Policies: true, Services: true}, Options{})
	r.SetFirewall(fixture.Firewall())
	r.SetPolicies(p)
	r.SetServices(s)
	<-r.trigger // the one sync the first delivery asks for
	for b.Loop() {
		b.StopTimer()
		p2, s2 := fixture.Large(1000, 10000, 2000) // fresh, as a source converts them
		b.StartTimer()
		r.SetPolicies(p2)
		r.SetServices(s2)
	}
	select {
	case <-r.trigger:
		b.Fatal("an unchanged event asked for a sync")
	default:
	}
}
