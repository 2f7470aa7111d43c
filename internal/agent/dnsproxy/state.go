package dnsproxy

import (
	"net/netip"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/model"
)

// fullFor is how long after the caps last refused an address the policies say so.
const fullFor = 10 * time.Minute

// NameState is what one name resolved to for one rule and family.
type NameState struct {
	Name    string // canonical name (trailing dot)
	Set     string // the nftables set
	IPv6    bool
	Expires map[netip.Addr]time.Time
}

// PolicyState is the learned state of one policy: per selector (matchName or matchPattern
// as written) the names and addresses, and a message when the caps refused addresses.
type PolicyState struct {
	Selectors map[string][]NameState
	Message   string
}

// PolicyStates returns the state of every policy with toFQDNs rules in the applied ruleset.
// It reads memory only; writers call it on their own schedule, not per answer.
func (p *Proxy) PolicyStates() map[model.ObjectKey]PolicyState {
	pl := p.currentPlan()
	now := p.cfg.Now()
	out := map[model.ObjectKey]PolicyState{}
	msg := ""
	if p.cache.fullSince(now.Add(-fullFor)) {
		msg = "DNS proxy: the learned state is at its cap (dns.maxNames, dns.maxAddresses); addresses of new names are not opened"
	}
	for _, t := range pl.targets {
		st, ok := out[t.Policy]
		if !ok {
			st = PolicyState{Selectors: map[string][]NameState{}, Message: msg}
			out[t.Policy] = st
		}
		for _, sel := range t.Rule.Selectors {
			if _, ok := st.Selectors[sel.Selector]; !ok {
				st.Selectors[sel.Selector] = nil
			}
		}
	}
	p.cache.each(now, func(name string, addrs map[netip.Addr]time.Time) {
		for _, t := range pl.targets {
			for _, sel := range t.Rule.Selectors {
				if !sel.Matches(name) {
					continue
				}
				v4 := NameState{Name: name, Set: t.SetV4, Expires: map[netip.Addr]time.Time{}}
				v6 := NameState{Name: name, Set: t.SetV6, IPv6: true, Expires: map[netip.Addr]time.Time{}}
				for a, exp := range addrs {
					if !pl.allowed.AllowsEgress(a) {
						continue
					}
					if a.Is4() {
						v4.Expires[a] = exp
					} else {
						v6.Expires[a] = exp
					}
				}
				st := out[t.Policy]
				for _, ns := range []NameState{v4, v6} {
					if len(ns.Expires) > 0 {
						st.Selectors[sel.Selector] = append(st.Selectors[sel.Selector], ns)
					}
				}
			}
		}
	})
	return out
}
