package runner

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

type fakeApplier struct {
	calls chan *ruleset.Ruleset
	fail  int // fail this many calls first
}

func (f *fakeApplier) Apply(_ context.Context, r *ruleset.Ruleset) (nft.Result, error) {
	f.calls <- r
	if f.fail > 0 {
		f.fail--
		return nft.Result{}, errors.New("boom")
	}
	return nft.Result{Changed: true}, nil
}

type recordingReporter struct{ applied chan bool }

func (r recordingReporter) Report(_ context.Context, _ []model.Verdict, applied bool) {
	r.applied <- applied
}

func TestWaitsForRequiredParts(t *testing.T) {
	r := New(&fakeApplier{calls: make(chan *ruleset.Ruleset, 10)}, Parts{Policies: true, Services: true}, Options{})
	r.SetFirewall(fixture.Firewall())
	r.SetPolicies(fixture.Policies())
	if _, err := r.Sync(context.Background()); !errors.Is(err, ErrNotReady) {
		t.Fatalf("sync without services: %v", err)
	}
	r.SetServices(nil)
	if _, err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A burst of changes ends in the final state, and a failed apply is retried.
func TestRunConvergesAndRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ap := &fakeApplier{calls: make(chan *ruleset.Ruleset, 100), fail: 1}
	r := New(ap, Parts{Policies: true}, Options{Debounce: 10 * time.Millisecond})
	rep := recordingReporter{applied: make(chan bool, 100)}
	r.AddReporter(rep)
	go func() { _ = r.Run(ctx) }()

	r.SetFirewall(fixture.Firewall())
	pols := fixture.Policies()
	for i := range pols {
		r.SetPolicies(pols[:i+1])
	}
	snap, _ := model.Compose(fixture.Firewall(), pols, nil)
	want := ruleset.Render(snap, ruleset.Options{}).Digest()

	sawFailure := false
	for {
		got := <-ap.calls
		applied := <-rep.applied
		if !applied {
			sawFailure = true
			continue
		}
		if got.Digest() == want {
			break
		}
	}
	if !sawFailure {
		t.Error("the first apply should have failed and been reported as not applied")
	}
}

type recordingObserver struct{ results []SyncResult }

func (o *recordingObserver) Synced(_ context.Context, res SyncResult) {
	o.results = append(o.results, res)
}

// Observers learn which firewall generation each sync carried and whether it was applied.
func TestObserversSeeGenerationAndOutcome(t *testing.T) {
	r := New(&fakeApplier{calls: make(chan *ruleset.Ruleset, 10), fail: 1}, Parts{}, Options{})
	var obs recordingObserver
	r.AddObserver(&obs)
	fw := fixture.Firewall()
	fw.Generation = 7
	r.SetFirewall(fw)
	if _, err := r.Sync(context.Background()); err == nil {
		t.Fatal("first apply should fail")
	}
	if _, err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(obs.results) != 2 {
		t.Fatalf("results: %+v", obs.results)
	}
	if first := obs.results[0]; first.Applied || first.Err == nil || first.Firewall.Generation != 7 {
		t.Errorf("failed sync: %+v", first)
	}
	if second := obs.results[1]; !second.Applied || second.Err != nil || second.Firewall.Generation != 7 || second.Time.IsZero() {
		t.Errorf("applied sync: %+v", second)
	}
}

// The runner re-composes and re-renders only the half that changed; the result is always what
// a fresh compose and render of all inputs gives.
func TestRenderReusesOnlyUnchangedHalves(t *testing.T) {
	r := New(&fakeApplier{calls: make(chan *ruleset.Ruleset, 10)}, Parts{Policies: true, Services: true}, Options{})
	fw, pols, svcs := fixture.Firewall(), fixture.Policies(), fixture.Services()
	r.SetFirewall(fw)
	r.SetPolicies(pols)
	r.SetServices(svcs)
	check := func(step string, fw model.Firewall, pols []model.PolicyInput, svcs []model.ServiceInput) {
		t.Helper()
		got, verdicts, _, err := r.Render()
		if err != nil {
			t.Fatal(err)
		}
		snap, wantVerdicts := model.Compose(fw, pols, svcs)
		if want := ruleset.Render(snap, ruleset.Options{}); !got.Equal(want) {
			t.Errorf("%s: rendered ruleset differs from a fresh render", step)
		}
		if len(verdicts) != len(wantVerdicts) {
			t.Errorf("%s: %d verdicts, want %d", step, len(verdicts), len(wantVerdicts))
		}
	}
	check("initial", fw, pols, svcs)
	pols = pols[1:]
	r.SetPolicies(pols)
	check("policies changed", fw, pols, svcs)
	svcs = svcs[:1]
	r.SetServices(svcs)
	check("services changed", fw, pols, svcs)
	// allowedNetworks refuses everything: both halves must be composed again.
	capped := fixture.Firewall()
	capped.Allowed = &model.Allowed{}
	r.SetFirewall(capped)
	check("firewall changed", capped, pols, svcs)

	// An equal firewall part (a status-only update of the seed Firewall) does not even
	// trigger a sync.
	select {
	case <-r.trigger:
	default:
	}
	r.SetFirewall(capped)
	select {
	case <-r.trigger:
		t.Error("an unchanged firewall part triggered a sync")
	default:
	}
}
