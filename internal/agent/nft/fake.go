package nft

import (
	"context"
	"sync"
)

// FakeKernel keeps the names a batch leaves in the table, for tests without privileges.
// Commit fails with Fail when it is set.
type FakeKernel struct {
	Fail error

	mu      sync.Mutex
	inv     Inventory
	commits int
}

// Inventory implements Kernel.
func (f *FakeKernel) Inventory(context.Context) (Inventory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Inventory{Chains: append([]string(nil), f.inv.Chains...), Sets: append([]string(nil), f.inv.Sets...),
		Maps: append([]string(nil), f.inv.Maps...), Counters: append([]string(nil), f.inv.Counters...)}, nil
}

// Commit implements Kernel.
func (f *FakeKernel) Commit(_ context.Context, b *Batch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	f.commits++
	b.apply(&f.inv)
	return nil
}

// Commits counts the successful commits.
func (f *FakeKernel) Commits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commits
}
