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
