package dnsproxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	gnftables "github.com/google/nftables"
)

// Element is one learned address for one timeout set.
type Element struct {
	Set     string
	Addr    netip.Addr
	Timeout time.Duration
}

// SetUpdater writes learned addresses into the timeout sets of the agent's table. Add
// returns only after the kernel committed the elements (or failed); adding an element that
// exists sets its timeout anew.
type SetUpdater interface {
	Add(ctx context.Context, elems []Element) error
}

// NftSets is the SetUpdater on google/nftables: one netlink batch per call on a lasting
// connection in the caller's network namespace.
type NftSets struct {
	Table string
	// NetNS is an open network namespace file descriptor to work in (tests); 0 is the
	// caller's namespace.
	NetNS int

	mu   sync.Mutex
	conn *gnftables.Conn
}

// maxBatch bounds the elements of one netlink batch: the kernel refuses a message larger
// than the socket's send buffer (about 200 KiB), and an element takes about 40 bytes.
const maxBatch = 2000

// Add implements SetUpdater. A batch is atomic; when it fails (typically a set that was just
// removed with its policy), every set is retried on its own so the others still get their
// addresses, and the errors are returned. More than maxBatch elements (a restore after a
// restart) go in several batches.
func (n *NftSets) Add(_ context.Context, elems []Element) error {
	if len(elems) == 0 {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		opts := []gnftables.ConnOption{gnftables.AsLasting()}
		if n.NetNS != 0 {
			opts = append(opts, gnftables.WithNetNSFd(n.NetNS))
		}
		c, err := gnftables.New(opts...)
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		n.conn = c
	}
	var errs []error
	for start := 0; start < len(elems); start += maxBatch {
		if err := n.addBatch(elems[start:min(start+maxBatch, len(elems))]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (n *NftSets) addBatch(elems []Element) error {
	bySet := map[string][]Element{}
	for _, e := range elems {
		bySet[e.Set] = append(bySet[e.Set], e)
	}
	sets := slices.Sorted(maps.Keys(bySet))
	err := n.flush(sets, bySet)
	if err == nil || len(sets) == 1 {
		return err
	}
	var errs []error
	for _, s := range sets {
		if err := n.flush([]string{s}, bySet); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (n *NftSets) flush(sets []string, bySet map[string][]Element) error {
	table := &gnftables.Table{Name: n.Table, Family: gnftables.TableFamilyINet}
	for _, name := range sets {
		elems := bySet[name]
		set := &gnftables.Set{Table: table, Name: name, HasTimeout: true, KeyType: gnftables.TypeIPAddr}
		if !elems[0].Addr.Is4() {
			set.KeyType = gnftables.TypeIP6Addr
		}
		vals := make([]gnftables.SetElement, 0, len(elems))
		for _, e := range elems {
			// The kernel counts in milliseconds; 0 would mean "the set's default" (none).
			vals = append(vals, gnftables.SetElement{Key: e.Addr.AsSlice(), Timeout: max(e.Timeout, time.Millisecond)})
		}
		if err := n.conn.SetAddElements(set, vals); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	if err := n.conn.Flush(); err != nil {
		return fmt.Errorf("adding to sets %v: %w", sets, err)
	}
	return nil
}
