// Package ruleset renders a model.Snapshot into the agent's nftables table. It is pure: no
// I/O, no nft calls. The result is a value the applier diffs against what it applied last.
package ruleset

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// Ruleset is the complete desired content of the agent's table.
type Ruleset struct {
	Table    string
	Chains   []Chain // base chains first, then the chains they jump to, then object chains
	Sets     []Set   // sets and verdict maps
	Counters []Counter
}

// BaseChain holds the hook of a base chain.
type BaseChain struct {
	Type     string // filter, nat
	Hook     string // forward, postrouting
	Priority string
	Policy   string // accept, drop
}

// Chain is a chain and its rules in order.
type Chain struct {
	Name  string
	Base  *BaseChain
	Rules []string
}

// Set is a named set or, when Map is true, a verdict map.
type Set struct {
	Name     string
	Comment  string
	Type     string
	Map      bool
	Interval bool
	// Timeout sets hold elements that expire; their elements are written by the DNS proxy,
	// not by the renderer, and an apply never touches them.
	Timeout  bool
	Elements []Element
}

// Element is one key (fields of a concatenation) and, for maps, its value.
type Element struct {
	Key   []string
	Value string
}

// String is the element as nftables writes it; it also identifies the element when diffing.
func (e Element) String() string {
	k := strings.Join(e.Key, " . ")
	if e.Value == "" {
		return k
	}
	return k + " : " + e.Value
}

// Counter is a named counter. Counters are never flushed, so they survive every update.
// PolicyCounter and ServiceCounter name an object's counter.
type Counter struct {
	Name string
}

// Digest identifies the content; equal digests mean nothing to apply.
func (r *Ruleset) Digest() string {
	// One buffer hashed at once: many small writes into the hash cost 10x more.
	sum := sha256.Sum256(r.appendCanonical(make([]byte, 0, 1<<20)))
	return hex.EncodeToString(sum[:])
}

// appendCanonical appends an unambiguous serialization of the content to buf.
func (r *Ruleset) appendCanonical(buf []byte) []byte {
	w := func(parts ...string) {
		for _, p := range parts {
			buf = append(buf, p...)
			buf = append(buf, 0)
		}
		buf = append(buf, 1)
	}
	w("table", r.Table)
	for _, c := range r.Chains {
		w("chain", c.Name)
		if c.Base != nil {
			w("base", c.Base.Type, c.Base.Hook, c.Base.Priority, c.Base.Policy)
		}
		for _, rule := range c.Rules {
			w("rule", rule)
		}
	}
	for _, s := range r.Sets {
		flags := ""
		if s.Interval {
			flags = "interval"
		}
		if s.Timeout {
			flags += ",timeout"
		}
		kind := "set"
		if s.Map {
			kind = "map"
		}
		w(kind, s.Name, s.Comment, s.Type, flags)
		for _, e := range s.Elements {
			buf = append(buf, "element"...)
			for _, k := range e.Key {
				buf = append(buf, 0, 2)
				buf = append(buf, k...)
			}
			buf = append(buf, 0, 3)
			buf = append(buf, e.Value...)
			buf = append(buf, 1)
		}
	}
	for _, c := range r.Counters {
		w("counter", c.Name)
	}
	return buf
}

// Equal tells whether o has exactly the same content.
func (r *Ruleset) Equal(o *Ruleset) bool {
	if r == o {
		return true
	}
	if r == nil || o == nil || r.Table != o.Table || !slices.Equal(r.Counters, o.Counters) {
		return false
	}
	if !slices.EqualFunc(r.Chains, o.Chains, func(a, b Chain) bool {
		return a.Name == b.Name && slices.Equal(a.Rules, b.Rules) &&
			(a.Base == b.Base || a.Base != nil && b.Base != nil && *a.Base == *b.Base)
	}) {
		return false
	}
	return slices.EqualFunc(r.Sets, o.Sets, func(a, b Set) bool {
		return a.Name == b.Name && a.Comment == b.Comment && a.Type == b.Type && a.Map == b.Map && a.Interval == b.Interval && a.Timeout == b.Timeout &&
			slices.EqualFunc(a.Elements, b.Elements, func(x, y Element) bool { return x.Value == y.Value && slices.Equal(x.Key, y.Key) })
	})
}

// Stats are the numbers the benchmark and the docs report.
type Stats struct {
	ForwardRules int
	Chains       int
	Sets         int
	Elements     int
	Counters     int
}

// Stats counts the content.
func (r *Ruleset) Stats() Stats {
	s := Stats{Chains: len(r.Chains), Sets: len(r.Sets), Counters: len(r.Counters)}
	for _, c := range r.Chains {
		if c.Name == ChainForward {
			s.ForwardRules = len(c.Rules)
		}
	}
	for _, set := range r.Sets {
		s.Elements += len(set.Elements)
	}
	return s
}
