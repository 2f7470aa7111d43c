package nft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Options configure an Applier.
type Options struct {
	// RuleFile receives the complete ruleset after every successful apply, in a form
	// `nft -f` loads at boot. It is written in the background; WaitFile waits for it.
	// Empty disables the file.
	RuleFile string
	// Check runs `nft --check` of the transaction before applying it. Off by default: the
	// apply is one atomic transaction, so an invalid ruleset is rejected as a whole and the
	// kernel keeps the previous one; nft's error names the offending line either way. The
	// check only doubles the kernel work (0.4-0.8 s for the full benchmark ruleset).
	Check bool
	// Netlink, when set, lists the table (before a full sync and to read it back) and
	// applies element-only changes of the maps in one netlink batch. Without it both go
	// through nft (listing costs 0.3-0.6 s at 3,000 chains; an element change ~0.1 s,
	// because nft loads every element of the map first). The agent sets it.
	Netlink *Netlink
	// Log receives errors of the background file writes; nil uses slog.Default.
	Log *slog.Logger
}

// Result describes one Apply.
type Result struct {
	Changed    bool // something was sent to the kernel
	Full       bool // a full sync instead of a delta
	Operations int
	Netlink    bool          // the change went through one netlink batch, not nft
	Inventory  time.Duration // listing the table before a full sync
	Check      time.Duration
	Run        time.Duration
	ReadBack   time.Duration
}

// Applier keeps the agent's table equal to the last rendered ruleset.
type Applier struct {
	nft    knftables.Interface
	opts   Options
	lister Lister
	file   *fileWriter

	mu      sync.Mutex
	last    *ruleset.Ruleset // what the kernel holds; nil when unknown
	version uint64           // counts successful applies; names the rule file's content
}

// New returns an Applier for the inet table managed through nft.
func New(nft knftables.Interface, opts Options) *Applier {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	a := &Applier{nft: nft, opts: opts, lister: jsonLister{nft: nft}}
	if opts.Netlink != nil {
		a.lister = opts.Netlink
	}
	a.file = newFileWriter(opts.RuleFile, a.Text, opts.Log)
	return a
}

// Apply makes the kernel hold desired. Nothing is sent when desired equals what was applied
// last. On any failure the kernel keeps the previous ruleset (transactions are atomic) and
// the next Apply does a full sync. After a successful apply the rule file is written in the
// background.
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

	if a.last != nil && a.opts.Netlink != nil && !a.opts.Check {
		if changes, ok := elementOnlyDelta(a.last, desired); ok {
			start := time.Now()
			ops, err := a.opts.Netlink.applyElements(changes)
			res.Run = time.Since(start)
			if err == nil {
				res.Changed, res.Netlink, res.Operations = true, true, ops
				a.applied(desired)
				return res, nil
			}
			// The batch is atomic, so nothing changed; nft says precisely what is wrong.
			a.opts.Log.Warn("netlink element update failed; applying through nft", "err", err)
		}
	}

	tx, full, err := a.transaction(ctx, desired, &res)
	if err != nil {
		return res, err
	}
	res.Full, res.Operations = full, tx.NumOperations()

	if a.opts.Check {
		start := time.Now()
		err := a.nft.Check(ctx, tx)
		res.Check = time.Since(start)
		if err != nil {
			return res, &ApplyError{Kept: true, Err: fmt.Errorf("nft --check rejected the ruleset: %w", err)}
		}
	}
	start := time.Now()
	err = a.nft.Run(ctx, tx)
	res.Run = time.Since(start)
	if err != nil {
		a.last = nil
		// The transaction is atomic: the kernel refused all of it.
		return res, &ApplyError{Kept: true, Err: fmt.Errorf("the kernel refused the ruleset: %w", err)}
	}
	res.Changed = true

	// A successful nft run is committed as a whole. After a full sync, read the table back
	// and compare the inventory; deltas skip this, and any later failure falls back to a
	// full sync, which reads back again.
	if full {
		start = time.Now()
		err = a.verify(ctx, desired)
		res.ReadBack = time.Since(start)
		if err != nil {
			a.last = nil
			// The kernel took the transaction; what it holds now is not what was rendered.
			return res, &ApplyError{Kept: false, Err: fmt.Errorf("ruleset applied, but reading it back: %w", err)}
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
	seen := map[string]bool{}
	dup := func(kind, name string) error {
		if seen[kind+"\x00"+name] {
			return fmt.Errorf("rendered ruleset holds %s %q twice; nothing sent to the kernel", kind, name)
		}
		seen[kind+"\x00"+name] = true
		return nil
	}
	for _, c := range r.Chains {
		if err := dup("chain", c.Name); err != nil {
			return err
		}
	}
	for _, st := range r.Sets {
		if err := dup("set", st.Name); err != nil {
			return err
		}
	}
	for _, c := range r.Counters {
		if err := dup("counter", c.Name); err != nil {
			return err
		}
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

// transaction builds a delta against the last applied ruleset when possible.
func (a *Applier) transaction(ctx context.Context, desired *ruleset.Ruleset, res *Result) (*knftables.Transaction, bool, error) {
	if a.last != nil {
		tx := a.nft.NewTransaction()
		err := addDelta(tx, a.last, desired)
		if err == nil {
			return tx, false, nil
		}
		if !errors.Is(err, errNeedFull) {
			return nil, false, err
		}
	}
	start := time.Now()
	stale, err := a.Inventory(ctx)
	res.Inventory = time.Since(start)
	if err != nil {
		return nil, false, err
	}
	tx := a.nft.NewTransaction()
	addFull(tx, desired, stale)
	return tx, true, nil
}

// Inventory lists the objects in the agent's table; a missing table is empty.
func (a *Applier) Inventory(ctx context.Context) (Inventory, error) {
	return a.lister.Inventory(ctx)
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

// Text is the complete ruleset as an `nft -f` file. Every chain is flushed after it is
// added, so loading the file over a table that holds these chains does not duplicate rules.
func (a *Applier) Text(desired *ruleset.Ruleset) string {
	tx := a.nft.NewTransaction()
	var own Inventory
	for _, c := range desired.Chains {
		own.Chains = append(own.Chains, c.Name)
	}
	addFull(tx, desired, own)
	return tx.String()
}

// Forget drops what the Applier knows, so the next Apply is a full sync.
func (a *Applier) Forget() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last = nil
}
