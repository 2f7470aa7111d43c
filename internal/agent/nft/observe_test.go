package nft

import (
	"context"
	"errors"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
)

// The watch ignores the agent's own transactions by the thread the kernel names.
func TestOwnThread(t *testing.T) {
	if !ownThread(uint32(unix.Gettid())) || !ownThread(uint32(unix.Getpid())) {
		t.Error("this thread is not recognised as the agent's own")
	}
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if ownThread(uint32(cmd.Process.Pid)) {
		t.Error("another process counts as the agent's own")
	}
}

// observingFake is a FakeKernel that can be observed; during runs while the table is read.
type observingFake struct {
	*FakeKernel
	during func()
}

func (o *observingFake) Observe(context.Context) (TableState, error) {
	if o.during != nil {
		o.during()
	}
	return TableState{Exists: true}, nil
}

// Observe reads without holding up applies; a reading an apply overlapped is discarded.
func TestObserveDiscardsReadingsAnApplyOverlapped(t *testing.T) {
	ctx := context.Background()
	if _, _, err := New(&FakeKernel{}, Options{}).Observe(ctx); !errors.Is(err, ErrNotObservable) {
		t.Errorf("a kernel without rule listing: %v", err)
	}
	k := &observingFake{FakeKernel: &FakeKernel{}}
	ap := New(k, Options{})
	if last, _, err := ap.Observe(ctx); last != nil || err != nil {
		t.Fatalf("before any apply: %v %v", last, err)
	}
	first := render(fixture.Firewall(), fixture.Policies(), fixture.Services())
	if _, err := ap.Apply(ctx, first); err != nil {
		t.Fatal(err)
	}
	if last, observed, err := ap.Observe(ctx); last != first || !observed.Exists || err != nil {
		t.Fatalf("after the apply: %v %+v %v", last == first, observed, err)
	}
	second := render(fixture.Firewall(), fixture.Policies()[:1], fixture.Services())
	k.during = func() {
		if _, err := ap.Apply(ctx, second); err != nil {
			t.Error(err)
		}
	}
	if _, _, err := ap.Observe(ctx); !errors.Is(err, ErrApplied) {
		t.Fatalf("an apply during the reading: %v", err)
	}
	k.during = nil
	if last, _, err := ap.Observe(ctx); last != second || err != nil {
		t.Fatalf("the next reading: %v", err)
	}
	if err := ap.Verify(ctx); err != nil {
		t.Errorf("verify: %v", err)
	}
}
