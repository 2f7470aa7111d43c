package report

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/runner"
)

type recordingSink struct {
	mu     sync.Mutex
	writes []State
	dues   []bool
}

func (s *recordingSink) Target() string { return "recorder" }

func (s *recordingSink) Write(_ context.Context, st State, due bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes, s.dues = append(s.writes, st), append(s.dues, due)
	return nil
}

func (s *recordingSink) last() (State, bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.writes) == 0 {
		return State{}, false, 0
	}
	return s.writes[len(s.writes)-1], s.dues[len(s.dues)-1], len(s.writes)
}

// Run writes after a sync at once and on every interval; the periodic report refreshes
// lastRun only while the kernel is confirmed to hold the rules.
func TestHubRunRefreshesOnlyConfirmedRules(t *testing.T) {
	sink := &recordingSink{}
	var mu sync.Mutex
	confirmErr := error(nil)
	var seedContact time.Time // when the seed was last reached
	hub := NewHub(HubOptions{Interval: 50 * time.Millisecond, FromSeed: true, Sinks: []Sink{sink},
		Confirm:     func(context.Context) error { mu.Lock(); defer mu.Unlock(); return confirmErr },
		SeedContact: func() time.Time { mu.Lock(); defer mu.Unlock(); return seedContact }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = hub.Run(ctx) }()

	if _, _, n := sink.last(); n != 0 {
		t.Fatal("reported before the first sync")
	}
	t0 := time.Now().Add(-time.Hour)
	hub.Synced(ctx, runner.SyncResult{Firewall: model.Firewall{Generation: 4}, Applied: true, Time: t0})
	waitFor(t, func() bool {
		st, due, _ := sink.last()
		return !due && st.ObservedGeneration == 4 && st.LastRun.Equal(t0)
	})
	// Confirmed rules refresh lastRun, but without seed contact lastRunAgainstSeed stays.
	waitFor(t, func() bool {
		st, due, _ := sink.last()
		return due && st.LastRun.After(t0)
	})
	if st, _, _ := sink.last(); !st.LastRunAgainstSeed.Equal(t0) {
		t.Fatalf("lastRunAgainstSeed moved without seed contact: %s", st.LastRunAgainstSeed)
	}
	contact := time.Now()
	mu.Lock()
	seedContact = contact
	mu.Unlock()
	waitFor(t, func() bool {
		st, due, _ := sink.last()
		return due && st.LastRunAgainstSeed.Equal(contact)
	})

	mu.Lock()
	confirmErr = errors.New("table gone")
	mu.Unlock()
	time.Sleep(60 * time.Millisecond) // a tick may still be using the old answer
	st, _, _ := sink.last()
	stale := st.LastRun
	time.Sleep(150 * time.Millisecond)
	if st, _, _ := sink.last(); !st.LastRun.Equal(stale) {
		t.Errorf("lastRun refreshed although the rules are not confirmed: %s -> %s", stale, st.LastRun)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
