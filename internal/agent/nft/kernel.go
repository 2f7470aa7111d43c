package nft

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gnftables "github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Kernel is what the Applier needs from the kernel: Netlink, or a fake in tests.
type Kernel interface {
	Lister
	// Commit sends the batch as one transaction: all of it or nothing.
	Commit(ctx context.Context, b *Batch) error
}

// socketBuffer is the send and receive buffer of the netlink socket: a full sync of the
// benchmark ruleset is a batch of ~3 MB with ~10,000 acknowledgements.
const socketBuffer = 64 << 20

// elementsPerMessage keeps a message's element list below netlink's 64 KiB attribute limit.
const elementsPerMessage = 256

func (l *Netlink) batchConn(extra ...gnftables.ConnOption) (*gnftables.Conn, error) {
	opts := []gnftables.ConnOption{gnftables.WithSockOptions(func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			// FORCE needs CAP_NET_ADMIN, which the agent has; the plain options are capped
			// by net.core.{w,r}mem_max.
			for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], socketBuffer); serr != nil {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], socketBuffer)
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	})}
	if l.netns != nil {
		opts = append(opts, gnftables.WithNetNSFd(int(l.netns.Fd())))
	}
	return gnftables.New(append(opts, extra...)...)
}

// Commit implements Kernel.
func (l *Netlink) Commit(_ context.Context, b *Batch) error {
	c, err := l.batchConn()
	if err != nil {
		return err
	}
	table := &gnftables.Table{Name: l.table, Family: gnftables.TableFamilyINet}
	// Sets created in this batch, so that rules refer to them by ID.
	created := map[string]*gnftables.Set{}
	setFor := func(name string) (*gnftables.Set, error) {
		if s, ok := created[name]; ok {
			return s, nil
		}
		return &gnftables.Set{Table: table, Name: name}, nil
	}
	for _, o := range b.ops {
		switch o.kind {
		case opAddTable:
			c.AddTable(table)
		case opAddCounter:
			c.AddObj(&gnftables.CounterObj{Table: table, Name: o.name})
		case opDelCounter:
			c.DeleteObject(&gnftables.CounterObj{Table: table, Name: o.name})
		case opAddChain:
			ch, err := chainOf(table, o.chain)
			if err != nil {
				return err
			}
			c.AddChain(ch)
		case opFlushChain:
			c.FlushChain(&gnftables.Chain{Table: table, Name: o.name})
		case opDelChain:
			c.DelChain(&gnftables.Chain{Table: table, Name: o.name})
		case opAddSet:
			s, err := setOf(table, o.set)
			if err != nil {
				return err
			}
			if err := c.AddSet(s, nil); err != nil {
				return errf("set", o.name, err)
			}
			created[o.name] = s
		case opFlushSet:
			c.FlushSet(&gnftables.Set{Table: table, Name: o.name})
		case opDelSet:
			c.DelSet(&gnftables.Set{Table: table, Name: o.name})
		case opAddRule:
			comp, err := compileRule(o.rule, setFor)
			if err != nil {
				return errf("chain", o.name, err)
			}
			c.AddRule(&gnftables.Rule{Table: table, Chain: &gnftables.Chain{Table: table, Name: o.name}, Exprs: comp.exprs, UserData: comp.userData})
		case opAddElements, opDelElements:
			add := o.kind == opAddElements
			elems, err := encodeElements(*o.set, o.elems, add)
			if err != nil {
				return err
			}
			s, err := setOf(table, o.set)
			if err != nil {
				return err
			}
			for start := 0; start < len(elems); start += elementsPerMessage {
				chunk := elems[start:min(start+elementsPerMessage, len(elems))]
				if add {
					err = c.SetAddElements(s, chunk)
				} else {
					err = c.SetDeleteElements(s, chunk)
				}
				if err != nil {
					return errf("set", o.name, err)
				}
			}
		}
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.ENOBUFS) {
			// The acknowledgements overflowed: the transaction's fate is unknown here; the
			// read back decides.
			return &ApplyError{Kept: false, Err: fmt.Errorf("netlink: %w; state unknown until read back", err)}
		}
		return fmt.Errorf("netlink transaction: %w", err)
	}
	return nil
}

var priorities = map[string]int32{"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}

// parsePriority reads "filter + 1", "srcnat - 1", "-5" as nft does for the inet family.
func parsePriority(p string) (int32, error) {
	f := strings.Fields(p)
	base, ok := priorities[f[0]]
	if !ok {
		n, err := strconv.ParseInt(p, 10, 32)
		return int32(n), err
	}
	if len(f) == 1 {
		return base, nil
	}
	if len(f) != 3 || (f[1] != "+" && f[1] != "-") {
		return 0, fmt.Errorf("bad priority %q", p)
	}
	n, err := strconv.ParseInt(f[2], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad priority %q", p)
	}
	if f[1] == "-" {
		n = -n
	}
	return base + int32(n), nil
}

func chainOf(table *gnftables.Table, c *ruleset.Chain) (*gnftables.Chain, error) {
	ch := &gnftables.Chain{Table: table, Name: c.Name}
	b := c.Base
	if b == nil {
		return ch, nil
	}
	prio, err := parsePriority(b.Priority)
	if err != nil {
		return nil, errf("chain", c.Name, err)
	}
	ch.Priority = gnftables.ChainPriorityRef(gnftables.ChainPriority(prio))
	ch.Type = gnftables.ChainType(b.Type)
	switch b.Hook {
	case "forward":
		ch.Hooknum = gnftables.ChainHookForward
	case "postrouting":
		ch.Hooknum = gnftables.ChainHookPostrouting
	case "prerouting":
		ch.Hooknum = gnftables.ChainHookPrerouting
	case "input":
		ch.Hooknum = gnftables.ChainHookInput
	case "output":
		ch.Hooknum = gnftables.ChainHookOutput
	default:
		return nil, errf("chain", c.Name, fmt.Errorf("unsupported hook %q", b.Hook))
	}
	switch b.Policy {
	case "accept":
		pol := gnftables.ChainPolicyAccept
		ch.Policy = &pol
	case "drop":
		pol := gnftables.ChainPolicyDrop
		ch.Policy = &pol
	default:
		return nil, errf("chain", c.Name, fmt.Errorf("unsupported policy %q", b.Policy))
	}
	return ch, nil
}

var setTypes = map[string]gnftables.SetDatatype{
	"ipv4_addr":    gnftables.TypeIPAddr,
	"ipv6_addr":    gnftables.TypeIP6Addr,
	"inet_proto":   gnftables.TypeInetProto,
	"inet_service": gnftables.TypeInetService,
}

func setOf(table *gnftables.Table, s *ruleset.Set) (*gnftables.Set, error) {
	key, value, isMap := cutValue(s.Type)
	if isMap != s.Map || (isMap && value != "verdict") {
		return nil, errf("set", s.Name, fmt.Errorf("unsupported type %q", s.Type))
	}
	var types []gnftables.SetDatatype
	for _, f := range splitFields(key) {
		t, ok := setTypes[f]
		if !ok {
			return nil, errf("set", s.Name, fmt.Errorf("unsupported key type %q", f))
		}
		types = append(types, t)
	}
	out := &gnftables.Set{Table: table, Name: s.Name, Interval: s.Interval, HasTimeout: s.Timeout, IsMap: s.Map, Comment: s.Comment, KeyType: types[0]}
	if len(types) > 1 {
		t, err := gnftables.ConcatSetType(types...)
		if err != nil {
			return nil, errf("set", s.Name, err)
		}
		out.KeyType, out.Concatenation = t, true
	}
	if s.Map {
		out.DataType = gnftables.TypeVerdict
	}
	return out, nil
}

// SetElement is an element for AddElements: a single address (or a concatenation, written
// as nft writes it, e.g. "10.0.0.1 . tcp . 443").
type SetElement = ruleset.Element

// TimedElement is an element that expires after Timeout (0: never; the set needs `flags
// timeout` for a timeout).
type TimedElement struct {
	SetElement
	Timeout time.Duration
}

// SetUpdate is what to add to one named set of the table.
type SetUpdate struct {
	Set string
	// Type is the set's type as rendered (ruleset.Set.Type), e.g. "ipv4_addr".
	Type     string
	Elements []TimedElement
}

// AddToSets adds the elements of every update in one transaction: all of them or none.
// Adding an element that exists sets its timeout anew. It returns after the kernel
// acknowledged the transaction. It does not touch anything else and is safe to call while
// the applier runs: a delta never rewrites a set whose definition and rendered elements did
// not change; a full sync keeps timeout sets and recreates every other set (see the package
// doc). Element writes share one lasting connection (a DNS answer waits for them).
func (l *Netlink) AddToSets(_ context.Context, updates []SetUpdate) error {
	return l.elements(updates, true)
}

// AddElements adds elements to the named set of the table in one transaction, each expiring
// after timeout (0: never); AddToSets for one set.
func (l *Netlink) AddElements(ctx context.Context, setName, setType string, elems []SetElement, timeout time.Duration) error {
	u := SetUpdate{Set: setName, Type: setType, Elements: make([]TimedElement, len(elems))}
	for i, e := range elems {
		u.Elements[i] = TimedElement{SetElement: e, Timeout: timeout}
	}
	return l.AddToSets(ctx, []SetUpdate{u})
}

// DeleteElements removes elements from the named set in one transaction.
func (l *Netlink) DeleteElements(_ context.Context, setName, setType string, elems []SetElement) error {
	u := SetUpdate{Set: setName, Type: setType, Elements: make([]TimedElement, len(elems))}
	for i, e := range elems {
		u.Elements[i] = TimedElement{SetElement: e}
	}
	return l.elements([]SetUpdate{u}, false)
}

// elementConn is the lasting connection of element writes, opened on first use.
func (l *Netlink) elementConn() (*gnftables.Conn, error) {
	if l.elemConn != nil {
		return l.elemConn, nil
	}
	c, err := l.batchConn(gnftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	l.elemConn = c
	return c, nil
}

func (l *Netlink) elements(updates []SetUpdate, add bool) error {
	table := &gnftables.Table{Name: l.table, Family: gnftables.TableFamilyINet}
	// Everything is encoded before anything is queued on the lasting connection, so a bad
	// element never leaves half a batch behind for the next call.
	type queued struct {
		set   *gnftables.Set
		elems []gnftables.SetElement
	}
	var batch []queued
	names := make([]string, 0, len(updates))
	for _, u := range updates {
		if len(u.Elements) == 0 {
			continue
		}
		names = append(names, u.Set)
		rs := &ruleset.Set{Name: u.Set, Type: u.Type, Map: strings.Contains(u.Type, " : ")}
		s, err := setOf(table, rs)
		if err != nil {
			return err
		}
		plain := make([]ruleset.Element, len(u.Elements))
		for i, e := range u.Elements {
			plain[i] = e.SetElement
			s.HasTimeout = s.HasTimeout || e.Timeout > 0
		}
		encoded, err := encodeElements(*rs, plain, add)
		if err != nil {
			return err
		}
		if s.HasTimeout {
			// A single address encodes to one element; only ranges would not.
			if len(encoded) != len(u.Elements) {
				return errf("set", u.Set, fmt.Errorf("timeouts need single addresses"))
			}
			for i := range encoded {
				encoded[i].Timeout = u.Elements[i].Timeout
			}
		}
		batch = append(batch, queued{set: s, elems: encoded})
	}
	if len(batch) == 0 {
		return nil
	}

	l.elemMu.Lock()
	defer l.elemMu.Unlock()
	c, err := l.elementConn()
	if err != nil {
		return err
	}
	for _, q := range batch {
		for start := 0; start < len(q.elems); start += elementsPerMessage {
			chunk := q.elems[start:min(start+elementsPerMessage, len(q.elems))]
			if add {
				err = c.SetAddElements(q.set, chunk)
			} else {
				err = c.SetDeleteElements(q.set, chunk)
			}
			if err != nil {
				// Drop the connection with what it queued; the next call opens a new one.
				_ = c.CloseLasting()
				l.elemConn = nil
				return errf("set", q.set.Name, err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("elements of sets %v: %w", names, err)
	}
	return nil
}
