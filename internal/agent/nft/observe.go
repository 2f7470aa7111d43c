package nft

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	gnftables "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Read-only views for drift detection (internal/agent/drift): what the kernel's table holds,
// in a form that compares with what a rendered ruleset compiles to. Nothing here writes to
// the kernel.

// TableState is the agent's table as comparable values: chains with their base definition
// and rules, sets and maps with their definition and elements, named counters. Rules and
// elements are keys of their netlink encoding, so a rule typed by hand with `nft` compares
// equal to the rendered one exactly when the kernel holds the same expressions.
type TableState struct {
	Exists   bool
	Chains   []ChainState
	Sets     []SetState
	Counters []string
}

// ChainState is one chain.
type ChainState struct {
	Name string
	// Base is the hook, type, priority and policy of a base chain; empty for a regular one.
	Base  string
	Rules []RuleState
}

// RuleState is one rule: Key is its encoding; Text is the rendered rule (expected side
// only, for messages).
type RuleState struct {
	Key  string
	Text string
}

// SetState is one named set or map.
type SetState struct {
	Name       string
	Map        bool
	Definition string
	// Dynamic sets (flags timeout) are filled by the agent at run time (the DNS proxy's
	// toFQDNs sets) and their elements expire: their contents are not part of the
	// comparison, and Elements stays empty.
	Dynamic  bool
	Elements []ElementState
}

// ElementState is one element: Key is its encoding; Text is the rendered element (expected
// side only; an interval's end element has none).
type ElementState struct {
	Key  string
	Text string
}

// TableObserver reads the whole table: Netlink implements it.
type TableObserver interface {
	Observe(ctx context.Context) (TableState, error)
}

// ErrNotObservable means the kernel behind the applier cannot list rules and elements (a
// FakeKernel).
var ErrNotObservable = errors.New("the kernel cannot be observed")

// Expected is what the kernel holds after r was applied, in the terms of TableState.
func Expected(r *ruleset.Ruleset) (TableState, error) {
	st := TableState{Exists: true}
	table := &gnftables.Table{Name: r.Table, Family: gnftables.TableFamilyINet}
	byName := func(name string) (*gnftables.Set, error) { return &gnftables.Set{Table: table, Name: name}, nil }
	for i := range r.Chains {
		c := &r.Chains[i]
		ch, err := chainOf(table, c)
		if err != nil {
			return TableState{}, err
		}
		cs := ChainState{Name: c.Name, Base: baseKey(ch)}
		for _, text := range c.Rules {
			comp, err := compileRule(text, byName)
			if err != nil {
				return TableState{}, errf("chain", c.Name, err)
			}
			key, err := ruleKey(comp.exprs, comp.userData)
			if err != nil {
				return TableState{}, errf("chain", c.Name, err)
			}
			cs.Rules = append(cs.Rules, RuleState{Key: key, Text: text})
		}
		st.Chains = append(st.Chains, cs)
	}
	for i := range r.Sets {
		s := &r.Sets[i]
		gs, err := setOf(table, s)
		if err != nil {
			return TableState{}, err
		}
		ss := SetState{Name: s.Name, Map: s.Map, Definition: setKey(gs), Dynamic: s.Timeout}
		if !ss.Dynamic {
			for _, e := range s.Elements {
				enc, err := encodeElements(*s, []ruleset.Element{e}, true)
				if err != nil {
					return TableState{}, err
				}
				for j, el := range enc {
					key, err := elementKey(el)
					if err != nil {
						return TableState{}, errf("set", s.Name, err)
					}
					es := ElementState{Key: key}
					if j == 0 {
						es.Text = e.String()
					}
					ss.Elements = append(ss.Elements, es)
				}
			}
		}
		st.Sets = append(st.Sets, ss)
	}
	for _, c := range r.Counters {
		st.Counters = append(st.Counters, c.Name)
	}
	return st, nil
}

// Observe implements TableObserver: chains with their rules, sets with their elements (not
// those of timeout sets), counter names. A missing table is a TableState without Exists.
func (l *Netlink) Observe(context.Context) (TableState, error) {
	// One socket for the thousands of requests (a rule dump per chain).
	opts := []gnftables.ConnOption{gnftables.AsLasting()}
	if l.netns != nil {
		opts = append(opts, gnftables.WithNetNSFd(int(l.netns.Fd())))
	}
	c, err := gnftables.New(opts...)
	if err != nil {
		return TableState{}, err
	}
	defer c.CloseLasting()
	t, err := l.lookup(c)
	if err != nil || t == nil {
		return TableState{}, err
	}
	st := TableState{Exists: true}
	chains, err := c.ListChainsOfTableFamily(gnftables.TableFamilyINet)
	if err != nil {
		return TableState{}, fmt.Errorf("listing chains over netlink: %w", err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != l.table {
			continue
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return TableState{}, fmt.Errorf("listing the rules of chain %s over netlink: %w", ch.Name, err)
		}
		cs := ChainState{Name: ch.Name, Base: baseKey(ch)}
		for _, r := range rules {
			key, err := ruleKey(r.Exprs, r.UserData)
			if err != nil {
				return TableState{}, errf("chain", ch.Name, err)
			}
			cs.Rules = append(cs.Rules, RuleState{Key: key})
		}
		st.Chains = append(st.Chains, cs)
	}
	sets, err := c.GetSets(t)
	if err != nil {
		return TableState{}, fmt.Errorf("listing sets over netlink: %w", err)
	}
	for _, s := range sets {
		if s.Anonymous {
			continue
		}
		ss := SetState{Name: s.Name, Map: s.IsMap, Definition: setKey(s), Dynamic: s.HasTimeout}
		if !ss.Dynamic {
			elems, err := c.GetSetElements(s)
			if err != nil {
				return TableState{}, fmt.Errorf("listing the elements of set %s over netlink: %w", s.Name, err)
			}
			for _, e := range elems {
				key, err := elementKey(e)
				if err != nil {
					return TableState{}, errf("set", s.Name, err)
				}
				ss.Elements = append(ss.Elements, ElementState{Key: key})
			}
		}
		st.Sets = append(st.Sets, ss)
	}
	counters, err := l.counters(c, t)
	if err != nil {
		return TableState{}, err
	}
	for name := range counters {
		st.Counters = append(st.Counters, name)
	}
	slices.Sort(st.Counters)
	return st, nil
}

// Observe returns the ruleset the applier last made the kernel hold and what the kernel's
// table holds now. The table is read without holding up applies; when an apply changed the
// kernel meanwhile, the reading is of no use and ErrApplied says so. last is nil when the
// applier knows nothing (no apply yet, or the last one failed): then there is nothing to
// compare with.
func (a *Applier) Observe(ctx context.Context) (last *ruleset.Ruleset, observed TableState, err error) {
	obs, ok := a.kernel.(TableObserver)
	if !ok {
		return nil, TableState{}, ErrNotObservable
	}
	a.mu.Lock()
	last, version := a.last, a.version
	a.mu.Unlock()
	if last == nil {
		return nil, TableState{}, nil
	}
	observed, err = obs.Observe(ctx)
	// An apply holds the lock for its whole run, so one that overlapped the reading has
	// finished here and shows as another version (or as nothing known, when it failed).
	a.mu.Lock()
	changed := a.last != last || a.version != version
	a.mu.Unlock()
	if changed {
		return nil, TableState{}, ErrApplied
	}
	return last, observed, err
}

// ErrApplied means an apply changed the table while it was being read.
var ErrApplied = errors.New("an apply changed the table while it was read")

// Verify checks, like Confirm, that the kernel still holds the objects of the last applied
// ruleset, but keeps what the applier knows: a mismatch does not turn the next apply into a
// repairing full sync (for nftables.repairDrift: false).
func (a *Applier) Verify(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		return errors.New("no ruleset applied yet")
	}
	return a.verify(ctx, a.last)
}

func baseKey(ch *gnftables.Chain) string {
	if ch.Hooknum == nil {
		return ""
	}
	var prio int64
	if ch.Priority != nil {
		prio = int64(*ch.Priority)
	}
	policy := "none"
	if ch.Policy != nil {
		policy = strconv.Itoa(int(*ch.Policy))
	}
	return fmt.Sprintf("type %s hook %d priority %d policy %s", ch.Type, uint32(*ch.Hooknum), prio, policy)
}

// setKey is a set's definition by its flags: google/nftables v0.3.0 does not report every
// key type back when it lists sets (concatenations, some interval maps), so the key type is
// not part of it (a set recreated by hand with another type lacks its elements, which shows).
func setKey(s *gnftables.Set) string {
	return fmt.Sprintf("concat=%v interval=%v timeout=%v map=%v", s.Concatenation, s.Interval, s.HasTimeout, s.IsMap)
}

// ruleKey encodes a rule's expressions as the kernel receives them; values the kernel fills
// in (anonymous counters' packets and bytes, a lookup's batch-local set ID) are left out,
// and so are byteorder expressions, which google/nftables v0.3.0 does not parse when it
// lists rules (it skips expression types it does not know).
func ruleKey(exprs []expr.Any, userData []byte) (string, error) {
	var b strings.Builder
	for _, e := range exprs {
		switch x := e.(type) {
		case *expr.Byteorder:
			continue
		case *expr.Counter:
			e = &expr.Counter{}
		case *expr.Lookup:
			c := *x
			c.SetID = 0
			e = &c
		case *expr.NAT: // the kernel reports a range's end register equal to its start
			c := *x
			if c.RegAddrMax == 0 {
				c.RegAddrMax = c.RegAddrMin
			}
			if c.RegProtoMax == 0 {
				c.RegProtoMax = c.RegProtoMin
			}
			e = &c
		case *expr.Redir:
			c := *x
			if c.RegisterProtoMax == 0 {
				c.RegisterProtoMax = c.RegisterProtoMin
			}
			e = &c
		}
		data, err := expr.Marshal(unix.NFPROTO_INET, e)
		if err != nil {
			return "", fmt.Errorf("encoding %T: %w", e, err)
		}
		b.WriteString(hex.EncodeToString(data))
		b.WriteByte('.')
	}
	b.WriteString(hex.EncodeToString(userData))
	return b.String(), nil
}

// elementKey encodes an element's key, interval end and value; an end equal to the key (a
// single value in a concatenation) is left out. google/nftables v0.3.0 does not decode a map
// element's verdict when it lists elements but keeps its attributes as Val: the expected
// side is encoded the same way (verdictAttributes).
func elementKey(e gnftables.SetElement) (string, error) {
	key := hex.EncodeToString(e.Key)
	if len(e.KeyEnd) > 0 && !slices.Equal(e.KeyEnd, e.Key) {
		key += "-" + hex.EncodeToString(e.KeyEnd)
	}
	if e.IntervalEnd {
		key += " end"
	}
	val := e.Val
	if v := e.VerdictData; v != nil {
		var err error
		if val, err = verdictAttributes(v); err != nil {
			return "", err
		}
	}
	if len(val) > 0 {
		key += " : " + hex.EncodeToString(val)
	}
	return key, nil
}

// verdictAttributes is a verdict as the kernel lists it in a map element's data.
func verdictAttributes(v *expr.Verdict) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.Uint32(unix.NFTA_VERDICT_CODE, uint32(int32(v.Kind)))
	if v.Chain != "" {
		ae.String(unix.NFTA_VERDICT_CHAIN, v.Chain)
	}
	return ae.Encode()
}

// ownThread tells whether the kernel's process ID of a transaction (NFTA_GEN_PROC_PID, a
// thread's ID) is a thread of this process.
func ownThread(pid uint32) bool {
	if pid == uint32(os.Getpid()) {
		return true
	}
	_, err := os.Stat("/proc/self/task/" + strconv.FormatUint(uint64(pid), 10))
	return err == nil
}

// Watch calls changed (without blocking on it) after every nftables transaction of another
// process that may concern the agent's table, until ctx ends. Its own transactions (applies,
// the DNS proxy's elements) are ignored. When the subscription breaks (the notifications
// overflowed the socket, e.g. during a large full sync), it subscribes again and calls
// changed, since a change may have been missed.
func (l *Netlink) Watch(ctx context.Context, changed func()) error {
	for {
		err := l.watchOnce(ctx, changed)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, errMonitorClosed) {
			return err
		}
		changed()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

var errMonitorClosed = errors.New("nftables monitor closed")

func (l *Netlink) watchOnce(ctx context.Context, changed func()) error {
	c, err := l.conn()
	if err != nil {
		return err
	}
	mon := gnftables.NewMonitor(gnftables.WithMonitorEventBuffer(64))
	events, err := c.AddGenerationalMonitor(mon)
	if err != nil {
		return fmt.Errorf("subscribing to nftables notifications: %w", err)
	}
	defer func() {
		_ = mon.Close()
		go func() { // the monitor's goroutine may be sending; let it end
			for range events {
			}
		}()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return errMonitorClosed
			}
			if by := ev.GeneratedBy; by != nil {
				if by.Type == gnftables.MonitorEventTypeOOB {
					continue // the channel closes next
				}
				if gen, ok := by.Data.(*gnftables.GenMsg); ok && ownThread(gen.ProcPID) {
					continue
				}
			}
			if l.concerns(ev.Changes) {
				changed()
			}
		}
	}
}

// concerns tells whether a transaction's changes may touch the agent's table; element
// notifications do not name their table, so they always may.
func (l *Netlink) concerns(changes []*gnftables.MonitorEvent) bool {
	if len(changes) == 0 {
		return true
	}
	for _, ch := range changes {
		var table *gnftables.Table
		switch d := ch.Data.(type) {
		case *gnftables.Table:
			table = d
		case *gnftables.Chain:
			table = d.Table
		case *gnftables.Rule:
			table = d.Table
		case *gnftables.Set:
			table = d.Table
		default:
			return true
		}
		if table == nil || table.Name == l.table {
			return true
		}
	}
	return false
}
