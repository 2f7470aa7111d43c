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
			snap.Policies = append(snap.Policies, p)
		}
		verdicts = append(verdicts, v)
	}
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
			snap.Services = append(snap.Services, s)
		}
		verdicts = append(verdicts, v)
	}
	// A stable order makes rendering deterministic whatever order the sources list in.
	slices.SortFunc(snap.Policies, func(a, b Policy) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	slices.SortFunc(snap.Services, func(a, b Service) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return snap, verdicts
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
