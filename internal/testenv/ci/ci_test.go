package ci

import (
	"runtime"
	"testing"
)

// recorder records whether the helper failed or skipped; like testing.T, both end the
// goroutine that called them.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()      {}
func (r *recorder) Fatal(...any) { r.failed = true; runtime.Goexit() }
func (r *recorder) Skip(...any)  { r.skipped = true; runtime.Goexit() }

func run(t *testing.T) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		SkipOutsideCI(r, "nft missing")
	}()
	<-done
	return r
}

func TestSkipOutsideCI(t *testing.T) {
	t.Setenv("CI", "true")
	if r := run(t); !r.failed || r.skipped {
		t.Errorf("in CI: failed %v skipped %v, want a failure", r.failed, r.skipped)
	}
	t.Setenv("CI", "")
	if r := run(t); r.failed || !r.skipped {
		t.Errorf("outside CI: failed %v skipped %v, want a skip", r.failed, r.skipped)
	}
}
