package dnsproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/atomicfile"
)

// cache holds the addresses learned per name (only names some toFQDNs rule selected), each
// with its expiry. It is bounded: a name or address beyond the caps is not learned (and not
// opened), after expired entries were swept.
type cache struct {
	maxNames, maxAddrs int

	mu       sync.Mutex
	names    map[string]map[netip.Addr]time.Time
	addrs    int
	dirty    bool      // changed since the last save
	lastFull time.Time // last time something was refused for the caps
}

func newCache(maxNames, maxAddrs int) *cache {
	return &cache{maxNames: maxNames, maxAddrs: maxAddrs, names: map[string]map[netip.Addr]time.Time{}}
}

// learn records addr for name until expires (an earlier expiry never shortens a later one)
// and returns the expiry to write into the kernel. ok is false when the caps refuse it.
func (c *cache) learn(name string, addr netip.Addr, expires, now time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	addrs, known := c.names[name]
	if old, ok := addrs[addr]; ok && old.After(now) {
		if !expires.After(old) {
			return old, true
		}
		addrs[addr] = expires
		c.dirty = true
		return expires, true
	}
	if (!known && len(c.names) >= c.maxNames) || c.addrs >= c.maxAddrs {
		c.sweepLocked(now)
		addrs, known = c.names[name]
		if (!known && len(c.names) >= c.maxNames) || c.addrs >= c.maxAddrs {
			c.lastFull = now
			return time.Time{}, false
		}
	}
	if !known {
		addrs = map[netip.Addr]time.Time{}
		c.names[name] = addrs
	}
	if _, ok := addrs[addr]; !ok {
		c.addrs++
	}
	addrs[addr] = expires
	c.dirty = true
	return expires, true
}

// sweep drops expired addresses and names without addresses.
func (c *cache) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
}

func (c *cache) sweepLocked(now time.Time) {
	for name, addrs := range c.names {
		for a, exp := range addrs {
			if !exp.After(now) {
				delete(addrs, a)
				c.addrs--
				c.dirty = true
			}
		}
		if len(addrs) == 0 {
			delete(c.names, name)
		}
	}
}

// size returns the number of names and addresses.
func (c *cache) size() (names, addrs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.names), c.addrs
}

// fullSince reports whether the caps refused something after t.
func (c *cache) fullSince(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastFull.After(t)
}

// each calls fn for every name and its live addresses (a copy), in name order.
func (c *cache) each(now time.Time, fn func(name string, addrs map[netip.Addr]time.Time)) {
	c.mu.Lock()
	snapshot := make(map[string]map[netip.Addr]time.Time, len(c.names))
	for name, addrs := range c.names {
		live := make(map[netip.Addr]time.Time, len(addrs))
		for a, exp := range addrs {
			if exp.After(now) {
				live[a] = exp
			}
		}
		if len(live) > 0 {
			snapshot[name] = live
		}
	}
	c.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(snapshot)) {
		fn(name, snapshot[name])
	}
}

// stateFile is the persisted cache.
type stateFile struct {
	Version int                             `json:"version"`
	Names   map[string]map[string]time.Time `json:"names"`
}

// save writes the cache to path when it changed since the last save: a temporary file in
// the same directory, fsync, rename, so a crash leaves the old or the new state.
func (c *cache) save(path string, now time.Time) error {
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	st := stateFile{Version: 1, Names: make(map[string]map[string]time.Time, len(c.names))}
	for name, addrs := range c.names {
		m := make(map[string]time.Time, len(addrs))
		for a, exp := range addrs {
			if exp.After(now) {
				m[a.String()] = exp.UTC()
			}
		}
		if len(m) > 0 {
			st.Names[name] = m
		}
	}
	c.dirty = false
	c.mu.Unlock()

	err := writeAtomic(path, st)
	if err != nil {
		c.mu.Lock()
		c.dirty = true // retried with the next save
		c.mu.Unlock()
	}
	return err
}

func writeAtomic(path string, st stateFile) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600, atomicfile.Parents(0o700))
}

// load reads a saved cache; expired entries and entries beyond the caps are dropped. A
// missing file is an empty cache.
func (c *cache) load(path string, now time.Time) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if st.Version != 1 {
		return fmt.Errorf("%s: unknown version %d", path, st.Version)
	}
	for _, name := range slices.Sorted(maps.Keys(st.Names)) {
		for s, exp := range st.Names[name] {
			a, err := netip.ParseAddr(s)
			if err != nil || !exp.After(now) {
				continue
			}
			c.learn(name, a.Unmap(), exp, now)
		}
	}
	c.mu.Lock()
	c.dirty = false
	c.mu.Unlock()
	return nil
}
