package ruleset

import (
	"sync"

	"github.com/palisade-fw/palisade/internal/agent/model"
)

// Renderer renders like Render but reuses the policy part (object chains, counters, CWNP
// maps) when the snapshot carries the very same policies slice as last time, and likewise the
// service part: a change to one CWNP does not re-render 2,000 services. When the policies
// changed, only the parts of the CWNP maps the change touches are resolved again
// (incremental.go); the result equals Render's. Callers must hand in
// a new slice whenever the content changes and never modify a slice they passed (the runner
// composes a new slice per change). Rulesets from one Renderer share data: treat them as
// read-only.
type Renderer struct {
	opts Options

	mu  sync.Mutex
	pol cachedPart[model.Policy]
	svc cachedPart[model.Service]
	// polCaches keep the resolved CWNP map components (incremental.go).
	polCaches *policyCaches
}

type cachedPart[T any] struct {
	valid       bool
	first       *T // identity of the input slice: its array and length
	n           int
	logAccepted bool
	sorted      []T
	part        objectPart
}

func (c *cachedPart[T]) hit(in []T, logAccepted bool) bool {
	return c.valid && len(in) > 0 && c.n == len(in) && c.first == &in[0] && c.logAccepted == logAccepted
}

func (c *cachedPart[T]) store(in []T, logAccepted bool, sorted []T, part objectPart) {
	*c = cachedPart[T]{valid: len(in) > 0, n: len(in), logAccepted: logAccepted, sorted: sorted, part: part}
	if len(in) > 0 {
		c.first = &in[0]
	}
}

// NewRenderer returns a Renderer for opts.
func NewRenderer(opts Options) *Renderer {
	return &Renderer{opts: opts, polCaches: newPolicyCaches()}
}

// Render renders snap, reusing unchanged parts.
func (r *Renderer) Render(snap model.Snapshot) *Ruleset {
	r.mu.Lock()
	defer r.mu.Unlock()
	logAccepted := snap.Firewall.LogAccepted
	var wg sync.WaitGroup
	if !r.pol.hit(snap.Policies, logAccepted) {
		wg.Go(func() {
			sorted := sortedPolicies(snap.Policies)
			r.pol.store(snap.Policies, logAccepted, sorted, renderPolicies(sorted, logAccepted, r.polCaches))
		})
	}
	if !r.svc.hit(snap.Services, logAccepted) {
		sorted := sortedServices(snap.Services)
		r.svc.store(snap.Services, logAccepted, sorted, renderServices(sorted, logAccepted))
	}
	wg.Wait()
	return assemble(r.opts, snap.Firewall, r.svc.sorted, r.pol.part, r.svc.part)
}
