package model

import (
	"fmt"
	"slices"
	"strings"
)

// PolicyInput is a CWNP as delivered by a source.
type PolicyInput struct {
	Key        ObjectKey
	Generation int64
	Spec       PolicySpec
}

// ServiceInput is a Service as delivered by a source.
type ServiceInput struct {
	Key  ObjectKey
	Spec ServiceSpec
}

// Verdict tells whether one object is part of the ruleset and why (not).
type Verdict struct {
	Key        ObjectKey
	Kind       string // "ClusterwideNetworkPolicy" or "Service"
	Generation int64
	Accepted   bool
	Message    string
}

// Compose parses and checks every object independently: a refused object never keeps the
// others out of the snapshot.
func Compose(fw Firewall, policies []PolicyInput, services []ServiceInput) (Snapshot, []Verdict) {
	snap := Snapshot{Firewall: fw}
	var pv, sv []Verdict
	snap.Policies, pv = ComposePolicies(fw, policies)
	snap.Services, sv = ComposeServices(fw, services)
	return snap, append(pv, sv...)
}

// ComposePolicies is the policy half of Compose, sorted by key.
func ComposePolicies(fw Firewall, policies []PolicyInput) ([]Policy, []Verdict) {
	var out []Policy
	var verdicts []Verdict
	for _, in := range policies {
		v := Verdict{Key: in.Key, Kind: "ClusterwideNetworkPolicy", Generation: in.Generation}
		p, err := ParsePolicy(in.Key, in.Spec)
		if err == nil {
			err = fw.Allowed.checkPolicy(p)
		}
		if err != nil {
			v.Message = err.Error()
		} else {
			v.Accepted = true
			v.Message = strings.Join(p.Notes, "; ")
			out = append(out, p)
		}
		verdicts = append(verdicts, v)
	}
	// A stable order makes rendering deterministic whatever order the sources list in.
	SortByKey(out, func(p Policy) ObjectKey { return p.Key })
	return out, verdicts
}

// ComposeServices is the service half of Compose, sorted by key.
func ComposeServices(fw Firewall, services []ServiceInput) ([]Service, []Verdict) {
	var out []Service
	var verdicts []Verdict
	for _, in := range services {
		v := Verdict{Key: in.Key, Kind: "Service"}
		s, ok, err := ParseService(in.Key, in.Spec)
		if err == nil && !ok {
			continue
		}
		if err == nil {
			err = fw.Allowed.checkService(s)
		}
		if err != nil {
			v.Message = err.Error()
		} else {
			v.Accepted = true
			v.Message = strings.Join(s.Notes, "; ")
			out = append(out, s)
		}
		verdicts = append(verdicts, v)
	}
	SortByKey(out, func(s Service) ObjectKey { return s.Key })
	return out, verdicts
}

func (a *Allowed) checkPolicy(p Policy) error {
	if a == nil {
		return nil
	}
	for _, r := range p.Ingress {
		for _, peer := range r.Peers {
			if !containsPrefix(a.Ingress, peer.Prefix) {
				return fmt.Errorf("ingress from %s is outside allowedNetworks.ingress", peer.Prefix)
			}
		}
	}
	for _, r := range p.Egress {
		for _, peer := range r.Peers {
			if !containsPrefix(a.Egress, peer.Prefix) {
				return fmt.Errorf("egress to %s is outside allowedNetworks.egress", peer.Prefix)
			}
		}
	}
	return nil
}

func (a *Allowed) checkService(s Service) error {
	if a == nil {
		return nil
	}
	for _, src := range s.EffectiveSources() {
		if !containsPrefix(a.Ingress, src) {
			return fmt.Errorf("source range %s is outside allowedNetworks.ingress", src)
		}
	}
	return nil
}

// SortByKey sorts items by the string form of their keys, building each string once.
func SortByKey[T any](items []T, key func(T) ObjectKey) {
	if slices.IsSortedFunc(items, func(a, b T) int { return compareKeys(key(a), key(b)) }) {
		return
	}
	type keyed struct {
		key  string
		item T
	}
	tmp := make([]keyed, len(items))
	for i, it := range items {
		tmp[i] = keyed{key: key(it).String(), item: it}
	}
	slices.SortFunc(tmp, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	for i := range tmp {
		items[i] = tmp[i].item
	}
}

// compareKeys orders keys like their string forms without building them.
func compareKeys(a, b ObjectKey) int {
	if a.Source == b.Source && a.Namespace == b.Namespace {
		return strings.Compare(a.Name, b.Name)
	}
	return strings.Compare(a.String(), b.String())
}
