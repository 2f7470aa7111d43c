package nft

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/palisade-fw/palisade/internal/agent/atomicfile"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// fileWriter writes the rule file in the background so that an apply does not wait for
// formatting and fsync. Only the newest queued ruleset is written; it is only ever queued
// after the kernel accepted it, so the file always holds a ruleset that was applied.
type fileWriter struct {
	path   string
	render func(*ruleset.Ruleset) string
	log    *slog.Logger

	mu             sync.Mutex
	idle           chan struct{} // closed while no write runs
	pending        *ruleset.Ruleset
	pendingVersion uint64
	written        uint64 // version of the file's content; 0 = not written
	err            error  // of the last write
}

func newFileWriter(path string, render func(*ruleset.Ruleset) string, log *slog.Logger) *fileWriter {
	idle := make(chan struct{})
	close(idle)
	return &fileWriter{path: path, render: render, log: log, idle: idle}
}

// queue schedules writing r unless the file already holds it or it is already queued.
func (w *fileWriter) queue(r *ruleset.Ruleset, version uint64) {
	if w.path == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pendingVersion == version || (w.pending == nil && w.written == version && w.err == nil) {
		return
	}
	w.pending, w.pendingVersion = r, version
	select {
	case <-w.idle:
		w.idle = make(chan struct{})
		go w.loop(w.idle)
	default: // the running loop picks it up
	}
}

func (w *fileWriter) loop(idle chan struct{}) {
	w.mu.Lock()
	for w.pending != nil {
		r, version := w.pending, w.pendingVersion
		w.pending, w.pendingVersion = nil, 0
		w.mu.Unlock()
		// Atomic, so that readers (and a reboot) see either the old or the new file.
		err := atomicfile.WriteFile(w.path, []byte(w.render(r)), 0o600, atomicfile.Parents(0o755))
		w.mu.Lock()
		if err != nil {
			w.err = fmt.Errorf("ruleset applied but writing %s failed: %w", w.path, err)
			w.log.Error("writing the rule file", "file", w.path, "err", err)
			continue
		}
		w.written, w.err = version, nil
	}
	close(idle)
	w.mu.Unlock()
}

func (w *fileWriter) wait(ctx context.Context) error {
	w.mu.Lock()
	idle := w.idle
	w.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
