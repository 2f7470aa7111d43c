package droplog

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
)

// syncBuffer collects the printer's output for polling.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// waitFor polls until cond holds; the deadline is generous because the machine is shared.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHubCountsEveryLostLineAndTellsReceivers(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewHub(HubOptions{Firewall: "fw-1", Buffer: 3, Rate: 1, Burst: 2, Registerer: reg})
	for i := range 5 {
		h.Add(map[string]string{"ACTION": "Drop", "DPT": string(rune('0' + i))})
	}
	// Burst 2: lines 0 and 1 are kept, 2..4 are over the rate.
	if got := testutil.ToFloat64(h.lost.WithLabelValues(LostRateLimit)); got != 3 {
		t.Fatalf("rate-limited lines counted %v, want 3", got)
	}
	// The next accepted line carries the loss marker in front of it.
	h.limiter = rate.NewLimiter(rate.Inf, 0)
	h.Add(map[string]string{"ACTION": "Drop", "DPT": "5"})
	// Buffer 3 held lines 0, 1; then marker and line 5 evict line 0, unread.
	if got := testutil.ToFloat64(h.lost.WithLabelValues(LostUnread)); got != 1 {
		t.Fatalf("unread evictions %v, want 1", got)
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	out := &syncBuffer{}
	f := &Follower{URL: srv.URL, Printer: &Printer{W: out}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go f.Run(ctx)
	waitFor(t, "three records", func() bool { return len(out.lines()) >= 3 })
	lines := out.lines()
	if lines[0]["DPT"] != "1" || lines[0]["firewall"] != "fw-1" {
		t.Errorf("first line %v", lines[0])
	}
	if lines[1]["lost"] != float64(3) || lines[1]["reason"] != LostRateLimit {
		t.Errorf("marker %v", lines[1])
	}
	if lines[2]["DPT"] != "5" {
		t.Errorf("last line %v", lines[2])
	}
	// A line added while the receiver streams arrives once.
	h.Add(map[string]string{"ACTION": "Accept", "DPT": "6"})
	waitFor(t, "the live line", func() bool { return len(out.lines()) >= 4 })
	if l := out.lines(); len(l) != 4 || l[3]["ACTION"] != "Accept" {
		t.Errorf("lines %v", l)
	}
	if got := testutil.ToFloat64(h.lines.WithLabelValues("Accept")); got != 1 {
		t.Errorf("accepted lines %v", got)
	}
}

func TestReceiverResumesWithoutDuplicatesAndReportsGaps(t *testing.T) {
	h := NewHub(HubOptions{Buffer: 2, Rate: 1000, Burst: 1000})
	h.Add(map[string]string{"DPT": "1"})
	srv := httptest.NewServer(h)
	out := &syncBuffer{}
	f := &Follower{URL: srv.URL, Printer: &Printer{W: out}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	waitFor(t, "first line", func() bool { return len(out.lines()) == 1 })
	cancel()
	<-done
	srv.Close()

	// While disconnected three lines arrive; the buffer keeps two.
	for _, p := range []string{"2", "3", "4"} {
		h.Add(map[string]string{"DPT": p})
	}
	srv = httptest.NewServer(h)
	defer srv.Close()
	f.URL = srv.URL
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	go f.Run(ctx)
	waitFor(t, "resumed lines", func() bool { return len(out.lines()) >= 4 })
	got := out.lines()
	if got[1]["lost"] != float64(1) || got[1]["reason"] != LostUnread || got[2]["DPT"] != "3" || got[3]["DPT"] != "4" {
		t.Errorf("after resume: %v", got)
	}
}
