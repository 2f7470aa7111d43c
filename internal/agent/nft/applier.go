package nft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Options configure an Applier.
type Options struct {
	// RuleFile receives the complete ruleset after every successful apply, in a form
	// `nft -f` loads at boot. It is written in the background, after the kernel took the
	// ruleset; WaitFile waits for it. Empty disables the file.
	RuleFile string
	// Log receives errors of the background file writes; nil uses slog.Default.
	Log *slog.Logger
}

// Result describes one Apply.
type Result struct {
	Changed    bool // something was sent to the kernel
	Full       bool // a full sync instead of a delta
	Operations int
	Inventory  time.Duration // listing the table before a full sync
	Run        time.Duration // building and committing the transaction
	ReadBack   time.Duration
}

// Applier keeps the agent's table equal to the last rendered ruleset.
type Applier struct {
	kernel Kernel
	opts   Options
	file   *fileWriter

	mu      sync.Mutex
	last    *ruleset.Ruleset // what the kernel holds; nil when unknown
	version uint64           // counts successful applies; names the rule file's content
}

// New returns an Applier that talks to the kernel through k (a *Netlink in the agent).
func New(k Kernel, opts Options) *Applier {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	a := &Applier{kernel: k, opts: opts}
	a.file = newFileWriter(opts.RuleFile, Text, opts.Log)
	return a
}

// Apply makes the kernel hold desired. Nothing is sent when desired equals what was applied
// last. On any failure the next Apply is a full sync; the error says whether the kernel
// kept the previous ruleset (PreviousKept). After a successful apply the rule file is
// written in the background.
func (a *Applier) Apply(ctx context.Context, desired *ruleset.Ruleset) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()

	var res Result
	if err := checkUnique(desired); err != nil {
		return res, &ApplyError{Kept: true, Err: err}
	}
	// A structural comparison stops at the first difference and costs a few milliseconds
	// for thousands of elements (a digest of the whole ruleset costs more).
	if a.last != nil && a.last.Equal(desired) {
		a.file.queue(a.last, a.version) // no-op unless an earlier write failed
		return res, nil
	}

	var batch *Batch
	elementsOnly := false
	if a.last != nil {
		var ok bool
		if batch, elementsOnly, ok = deltaBatch(a.last, desired); !ok {
			batch = nil
		}
	}
	if batch == nil {
		start := time.Now()
		existing, err := a.kernel.Inventory(ctx)
		res.Inventory = time.Since(start)
		if err != nil {
			a.last = nil
			return res, &ApplyError{Kept: true, Err: fmt.Errorf("listing the table: %w", err)}
		}
		batch, res.Full = fullBatch(desired, existing), true
	}
	res.Operations = batch.Len()

	start := time.Now()
	err := a.kernel.Commit(ctx, batch)
	res.Run = time.Since(start)
	a.last = nil // until the outcome is known
	var ae *ApplyError
	switch {
	case errors.As(err, &ae): // the kernel's state is unknown: read back decides
	case err != nil:
		// The transaction is atomic: the kernel refused all of it.
		return res, &ApplyError{Kept: true, Err: fmt.Errorf("the kernel refused the ruleset: %w", err)}
	}
	res.Changed = true

	if ae != nil || !elementsOnly {
		start = time.Now()
		verr := a.verify(ctx, desired)
		res.ReadBack = time.Since(start)
		if verr != nil {
			// The kernel took the transaction (or may have); what it holds is not what was
			// rendered.
			return res, &ApplyError{Kept: false, Err: fmt.Errorf("ruleset applied, but reading it back: %w", verr)}
		}
	}
	a.applied(desired)
	return res, nil
}

// ApplyError is a failed Apply. Kept tells the truth about the kernel: true when it still
// holds the previous ruleset (nothing was committed), false when the transaction was
// committed but reading it back showed a difference.
type ApplyError struct {
	Kept bool
	Err  error
}

func (e *ApplyError) Error() string {
	if e.Kept {
		return e.Err.Error() + "; previous ruleset kept"
	}
	return e.Err.Error() + "; the kernel holds the new ruleset, a full sync follows"
}

func (e *ApplyError) Unwrap() error { return e.Err }

// PreviousKept tells whether err is an apply failure that left the previous ruleset in place.
func PreviousKept(err error) bool {
	var ae *ApplyError
	return errors.As(err, &ae) && ae.Kept
}

// checkUnique refuses a ruleset that names one object twice; the kernel would merge the two
// and the read back could never match. The renderer never produces one (model.Compose
// merges or refuses duplicate objects); this keeps a bug from reaching the kernel.
func checkUnique(r *ruleset.Ruleset) error {
	dup := func(kind, name string) error {
		return fmt.Errorf("rendered ruleset holds %s %q twice; nothing sent to the kernel", kind, name)
	}
	chains := make(map[string]struct{}, len(r.Chains))
	for _, c := range r.Chains {
		if _, ok := chains[c.Name]; ok {
			return dup("chain", c.Name)
		}
		chains[c.Name] = struct{}{}
	}
	sets := make(map[string]struct{}, len(r.Sets))
	for _, st := range r.Sets {
		if _, ok := sets[st.Name]; ok {
			return dup("set", st.Name)
		}
		sets[st.Name] = struct{}{}
	}
	counters := make(map[string]struct{}, len(r.Counters))
	for _, c := range r.Counters {
		if _, ok := counters[c.Name]; ok {
			return dup("counter", c.Name)
		}
		counters[c.Name] = struct{}{}
	}
	return nil
}

// applied records that the kernel holds r and has the rule file follow.
func (a *Applier) applied(r *ruleset.Ruleset) {
	a.last = r
	a.version++
	a.file.queue(r, a.version)
}

// WaitFile waits until the rule file holds the last applied ruleset (or its write failed)
// and returns the error of the last write.
func (a *Applier) WaitFile(ctx context.Context) error {
	return a.file.wait(ctx)
}

// Inventory lists the objects in the agent's table; a missing table is empty.
func (a *Applier) Inventory(ctx context.Context) (Inventory, error) {
	return a.kernel.Inventory(ctx)
}

// verify reads back the table and checks it holds exactly the desired objects.
func (a *Applier) verify(ctx context.Context, desired *ruleset.Ruleset) error {
	got, err := a.Inventory(ctx)
	if err != nil {
		return fmt.Errorf("reading back: %w", err)
	}
	var want Inventory
	for _, c := range desired.Chains {
		want.Chains = append(want.Chains, c.Name)
	}
	for _, s := range desired.Sets {
		if s.Map {
			want.Maps = append(want.Maps, s.Name)
		} else {
			want.Sets = append(want.Sets, s.Name)
		}
	}
	for _, c := range desired.Counters {
		want.Counters = append(want.Counters, c.Name)
	}
	for _, check := range []struct {
		kind      string
		got, want []string
	}{{"chains", got.Chains, want.Chains}, {"sets", got.Sets, want.Sets}, {"maps", got.Maps, want.Maps}, {"counters", got.Counters, want.Counters}} {
		g, w := slices.Sorted(slices.Values(check.got)), slices.Sorted(slices.Values(check.want))
		if !slices.Equal(g, w) {
			return fmt.Errorf("read back: kernel holds %d %s, expected %d", len(g), check.kind, len(w))
		}
	}
	return nil
}

// Confirm checks that the kernel still holds the objects of the last applied ruleset (a
// listing of names, cheap over netlink). On a mismatch the applier forgets what it applied,
// so the next Apply is a full sync that repairs the table.
func (a *Applier) Confirm(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		return errors.New("no ruleset applied yet")
	}
	if err := a.verify(ctx, a.last); err != nil {
		a.last = nil
		return err
	}
	return nil
}

// Forget drops what the Applier knows, so the next Apply is a full sync.
func (a *Applier) Forget() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last = nil
}
