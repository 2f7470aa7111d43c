package dnsproxy

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/nft"
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

// NftSets is the SetUpdater on the agent's one kernel path: the element API of
// internal/agent/nft (Netlink.AddToSets, one netlink transaction per batch on a lasting
// connection, acknowledged before Add returns). The applier's full syncs keep these timeout
// sets with their elements.
type NftSets struct {
	Kernel *nft.Netlink
}

// maxBatch bounds the elements of one transaction, so a restore after a restart goes in
// several smaller transactions instead of one huge one.
const maxBatch = 2000

// Add implements SetUpdater. A batch is atomic; when it fails (typically a set that was just
// removed with its policy), every set is retried on its own so the others still get their
// addresses, and the errors are returned. More than maxBatch elements (a restore after a
// restart) go in several batches.
func (n *NftSets) Add(ctx context.Context, elems []Element) error {
	if len(elems) == 0 {
		return nil
	}
	var errs []error
	for start := 0; start < len(elems); start += maxBatch {
		if err := n.addBatch(ctx, elems[start:min(start+maxBatch, len(elems))]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (n *NftSets) addBatch(ctx context.Context, elems []Element) error {
	bySet := map[string]*nft.SetUpdate{}
	for _, e := range elems {
		u := bySet[e.Set]
		if u == nil {
			typ := "ipv4_addr"
			if !e.Addr.Is4() {
				typ = "ipv6_addr"
			}
			u = &nft.SetUpdate{Set: e.Set, Type: typ}
			bySet[e.Set] = u
		}
		// The kernel counts in milliseconds; 0 would mean "the set's default" (none).
		u.Elements = append(u.Elements, nft.TimedElement{SetElement: nft.SetElement{Key: []string{e.Addr.String()}}, Timeout: max(e.Timeout, time.Millisecond)})
	}
	names := slices.Sorted(maps.Keys(bySet))
	updates := make([]nft.SetUpdate, len(names))
	for i, name := range names {
		updates[i] = *bySet[name]
	}
	err := n.Kernel.AddToSets(ctx, updates)
	if err == nil || len(updates) == 1 {
		return err
	}
	var errs []error
	for _, u := range updates {
		if err := n.Kernel.AddToSets(ctx, []nft.SetUpdate{u}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
