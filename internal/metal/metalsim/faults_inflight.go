package metalsim

import (
	"errors"
	"net/http"
	"time"
)

// In-flight faults: requests that metal-api completes on its own time, whatever the client
// does meanwhile. A real metal-api keeps allocating after the client timed out; the plain
// delays of Latency and DelayNext drop the request instead when the client goes away.

// inflightRules is part of faultRules; guarded by Simulator.mu.
type inflightRules struct {
	slow map[string]*countedDelay
}

// SlowAllocate makes the next n allocations take d server-side: each is carried out d after it
// arrived, whether or not the client still waits, and answered only if it does. During d a
// find shows no machine, as metal-api shows none before its allocation commits.
func (f *Faults) SlowAllocate(n int, d time.Duration) {
	f.SlowServerSide("firewall.allocate", n, d)
}

// SlowServerSide makes the next n requests of op take d server-side, completing even when the
// client gave up.
func (f *Faults) SlowServerSide(op string, n int, d time.Duration) {
	f.with(func(st *state, _ time.Time) {
		if st.faults.inflight.slow == nil {
			st.faults.inflight.slow = map[string]*countedDelay{}
		}
		st.faults.inflight.slow[op] = &countedDelay{remaining: n, delay: d}
	})
}

// takeServerSideDelay consumes one server-side delay for op, 0 when none is armed.
func (s *Simulator) takeServerSideDelay(op string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	dl := s.st.faults.inflight.slow[op]
	if dl == nil || dl.remaining <= 0 {
		return 0
	}
	dl.remaining--
	return dl.delay
}

// serveDetached runs the handler d from now on its own goroutine and answers if the client is
// still there; it returns the status written, 0 when the client went away first.
func (s *Simulator) serveDetached(w http.ResponseWriter, r *http.Request, rt route, body []byte, authType string, d time.Duration) int {
	type answer struct {
		out any
		err error
	}
	done := make(chan answer, 1)
	go func() {
		time.Sleep(d)
		var a answer
		s.locked(func(st *state, now time.Time) {
			a.out, a.err = rt.handle(&reqCtx{r: r, body: body, authType: authType, st: st, now: now})
		})
		done <- a
	}()
	select {
	case <-r.Context().Done():
		return 0
	case a := <-done:
		if a.err != nil {
			var ae *apiError
			if errors.As(a.err, &ae) {
				return writeError(w, ae.code, ae.msg)
			}
			return writeError(w, http.StatusInternalServerError, a.err.Error())
		}
		return writeJSON(w, http.StatusOK, a.out)
	}
}
