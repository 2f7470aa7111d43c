package nft

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	gnftables "github.com/google/nftables"
)

// Inventory is what the kernel holds in the agent's table, by object type.
type Inventory struct {
	Chains, Sets, Maps, Counters []string
}

// Lister reads what the kernel holds in the agent's table.
type Lister interface {
	// Inventory names the table's chains, sets, maps and counters; a missing table is empty.
	Inventory(ctx context.Context) (Inventory, error)
}

// CounterValue is what a named counter counted so far.
type CounterValue struct {
	Packets, Bytes uint64
}

// Netlink is the agent's one path to the kernel (github.com/google/nftables): it commits
// batches as one transaction, lists names and counter values without rules or set elements
// (a few milliseconds for thousands of objects), and updates set elements.
type Netlink struct {
	table string
	netns *os.File // nil: the process's network namespace

	elemMu   sync.Mutex
	elemConn *gnftables.Conn // lasting connection of element writes (AddToSets)
}

// NewNetlink works on the inet table in the caller's network namespace, or in the one at
// netnsPath (e.g. /var/run/netns/NAME) when set.
func NewNetlink(table, netnsPath string) (*Netlink, error) {
	l := &Netlink{table: table}
	if netnsPath != "" {
		f, err := os.Open(netnsPath)
		if err != nil {
			return nil, fmt.Errorf("network namespace: %w", err)
		}
		l.netns = f
	}
	return l, nil
}

// Close releases the element connection and the namespace handle.
func (l *Netlink) Close() error {
	l.elemMu.Lock()
	var err error
	if l.elemConn != nil {
		err = l.elemConn.CloseLasting()
		l.elemConn = nil
	}
	l.elemMu.Unlock()
	if l.netns != nil {
		err = errors.Join(err, l.netns.Close())
	}
	return err
}

func (l *Netlink) conn() (*gnftables.Conn, error) {
	var opts []gnftables.ConnOption
	if l.netns != nil {
		opts = append(opts, gnftables.WithNetNSFd(int(l.netns.Fd())))
	}
	return gnftables.New(opts...)
}

// table returns nil when the table does not exist.
func (l *Netlink) lookup(c *gnftables.Conn) (*gnftables.Table, error) {
	tables, err := c.ListTablesOfFamily(gnftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing tables over netlink: %w", err)
	}
	for _, t := range tables {
		if t.Name == l.table {
			return t, nil
		}
	}
	return nil, nil
}

// Inventory implements Lister.
func (l *Netlink) Inventory(context.Context) (Inventory, error) {
	c, err := l.conn()
	if err != nil {
		return Inventory{}, err
	}
	t, err := l.lookup(c)
	if err != nil || t == nil {
		return Inventory{}, err
	}
	var inv Inventory
	chains, err := c.ListChainsOfTableFamily(gnftables.TableFamilyINet)
	if err != nil {
		return Inventory{}, fmt.Errorf("listing chains over netlink: %w", err)
	}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == l.table {
			inv.Chains = append(inv.Chains, ch.Name)
		}
	}
	sets, err := c.GetSets(t)
	if err != nil {
		return Inventory{}, fmt.Errorf("listing sets over netlink: %w", err)
	}
	for _, s := range sets {
		if s.Anonymous {
			continue
		}
		if s.IsMap {
			inv.Maps = append(inv.Maps, s.Name)
		} else {
			inv.Sets = append(inv.Sets, s.Name)
		}
	}
	counters, err := l.counters(c, t)
	if err != nil {
		return Inventory{}, err
	}
	for name := range counters {
		inv.Counters = append(inv.Counters, name)
	}
	return inv, nil
}

// Counters returns every named counter of the table; a missing table has none.
func (l *Netlink) Counters(context.Context) (map[string]CounterValue, error) {
	c, err := l.conn()
	if err != nil {
		return nil, err
	}
	t, err := l.lookup(c)
	if err != nil || t == nil {
		return nil, err
	}
	return l.counters(c, t)
}

func (l *Netlink) counters(c *gnftables.Conn, t *gnftables.Table) (map[string]CounterValue, error) {
	objs, err := c.GetObjects(t)
	if err != nil {
		return nil, fmt.Errorf("listing counters over netlink: %w", err)
	}
	out := make(map[string]CounterValue, len(objs))
	for _, o := range objs {
		if co, ok := o.(*gnftables.CounterObj); ok {
			out[co.Name] = CounterValue{Packets: co.Packets, Bytes: co.Bytes}
		}
	}
	return out, nil
}
