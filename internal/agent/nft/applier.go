package nft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Options configure an Applier.
type Options struct {
	// RuleFile receives the complete ruleset after every successful apply, in a form
	// `nft -f` loads at boot. Empty disables the file.
	RuleFile string
	// SkipCheck skips `nft --check` before applying. The apply is atomic either way; the
	// check only separates "invalid" from "failed to apply" in errors.
	SkipCheck bool
}

// Result describes one Apply.
type Result struct {
	Changed    bool // something was sent to the kernel
	Full       bool // a full sync instead of a delta
	Operations int
	Check      time.Duration
	Run        time.Duration
	ReadBack   time.Duration
	File       time.Duration
}

// Applier keeps the agent's table equal to the last rendered ruleset.
type Applier struct {
	nft  knftables.Interface
	opts Options

	mu         sync.Mutex
	last       *ruleset.Ruleset // what the kernel holds; nil when unknown
	lastDigest string
	fileDigest string
}

// New returns an Applier for the inet table managed through nft.
func New(nft knftables.Interface, opts Options) *Applier {
	return &Applier{nft: nft, opts: opts}
}

// Apply makes the kernel hold desired. Nothing is sent when desired equals what was applied
// last. On any failure the kernel keeps the previous ruleset (transactions are atomic) and
// the next Apply does a full sync.
func (a *Applier) Apply(ctx context.Context, desired *ruleset.Ruleset) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()

	var res Result
	digest := desired.Digest()
	if a.last != nil && digest == a.lastDigest {
		if a.fileDigest != digest {
			return res, a.writeFile(desired, digest, &res)
		}
		return res, nil
	}

	tx, full, err := a.transaction(ctx, desired)
	if err != nil {
		return res, err
	}
	res.Full, res.Operations = full, tx.NumOperations()

	if !a.opts.SkipCheck {
		start := time.Now()
		err := a.nft.Check(ctx, tx)
		res.Check = time.Since(start)
		if err != nil {
			return res, fmt.Errorf("ruleset rejected by nft --check, previous ruleset kept: %w", err)
		}
	}
	start := time.Now()
	err = a.nft.Run(ctx, tx)
	res.Run = time.Since(start)
	if err != nil {
		a.last = nil
		return res, fmt.Errorf("applying ruleset failed, previous ruleset kept: %w", err)
	}
	res.Changed = true

	// A successful nft run is committed as a whole. After a full sync, read the table back
	// and compare the inventory; deltas skip this (it lists every chain: ~0.3 s at 3,000
	// objects), and any later failure falls back to a full sync, which reads back again.
	if full {
		start = time.Now()
		err = a.verify(ctx, desired)
		res.ReadBack = time.Since(start)
		if err != nil {
			a.last = nil
			return res, err
		}
	}
	a.last, a.lastDigest = desired, digest
	return res, a.writeFile(desired, digest, &res)
}

// transaction builds a delta against the last applied ruleset when possible.
func (a *Applier) transaction(ctx context.Context, desired *ruleset.Ruleset) (*knftables.Transaction, bool, error) {
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
	stale, err := a.Inventory(ctx)
	if err != nil {
		return nil, false, err
	}
	tx := a.nft.NewTransaction()
	addFull(tx, desired, stale)
	return tx, true, nil
}

// Inventory lists the objects in the agent's table; a missing table is empty.
func (a *Applier) Inventory(ctx context.Context) (Inventory, error) {
	all, err := a.nft.ListAll(ctx)
	if err != nil {
		if knftables.IsNotFound(err) {
			return Inventory{}, nil
		}
		return Inventory{}, fmt.Errorf("listing the table: %w", err)
	}
	return Inventory{Chains: all["chain"], Sets: all["set"], Maps: all["map"], Counters: all["counter"]}, nil
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

// Text is the complete ruleset as an `nft -f` file.
func (a *Applier) Text(desired *ruleset.Ruleset) string {
	tx := a.nft.NewTransaction()
	addFull(tx, desired, Inventory{})
	return tx.String()
}

// Forget drops what the Applier knows, so the next Apply is a full sync.
func (a *Applier) Forget() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last = nil
}

func (a *Applier) writeFile(desired *ruleset.Ruleset, digest string, res *Result) error {
	if a.opts.RuleFile == "" {
		a.fileDigest = digest
		return nil
	}
	start := time.Now()
	err := writeAtomic(a.opts.RuleFile, []byte(a.Text(desired)))
	res.File = time.Since(start)
	if err != nil {
		return fmt.Errorf("ruleset applied but writing %s failed: %w", a.opts.RuleFile, err)
	}
	a.fileDigest = digest
	return nil
}
