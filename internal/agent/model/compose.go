package model

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
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
	for _, in := range dedupePolicies(policies) {
		p, v := in.compose(fw.Allowed)
		if v.Accepted {
			out = append(out, p)
		}
		verdicts = append(verdicts, v)
	}
	// A stable order makes rendering deterministic whatever order the sources list in.
	SortByKey(out, func(p Policy) ObjectKey { return p.Key })
	return out, verdicts
}

// compose parses one (deduplicated) policy and applies allowedNetworks.
func (in policyInput) compose(allowed *Allowed) (Policy, Verdict) {
	v := Verdict{Key: in.Key, Kind: KindPolicy, Generation: in.Generation}
	p, err := in.parse()
	if err == nil {
		p, err = allowed.capPolicy(p)
	}
	if err == nil && in.refused != "" {
		err = errors.New(in.refused)
	}
	if err != nil {
		v.Message = err.Error()
		return Policy{}, v
	}
	v.Accepted = true
	v.Message = strings.Join(p.Notes, "; ")
	return p, v
}

// ComposeServices is the service half of Compose, sorted by key.
func ComposeServices(fw Firewall, services []ServiceInput) ([]Service, []Verdict) {
	var out []Service
	var verdicts []Verdict
	for _, in := range dedupeServices(services) {
		v := Verdict{Key: in.Key, Kind: KindService}
		s, ok, err := ParseService(in.Key, in.Spec)
		if err == nil && !ok {
			continue
		}
		if err == nil && in.refused != "" {
			err = errors.New(in.refused)
		}
		if err == nil {
			err = fw.checkServiceIPs(s)
		}
		if err == nil && in.merged > 1 {
			s.Notes = append(s.Notes, fmt.Sprintf("listed %d times with the same spec; merged", in.merged))
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

// Verdict kinds.
const (
	KindPolicy  = "ClusterwideNetworkPolicy"
	KindService = "Service"
)

type policyInput struct {
	PolicyInput
	merged  int    // how many identical copies were merged into this one
	refused string // why the key is refused (copies that differ)
}

func (in policyInput) parse() (Policy, error) {
	if in.Key.Source == SourceDefault {
		return defaultEgress(in.Spec)
	}
	p, err := ParsePolicy(in.Key, in.Spec)
	if err == nil && in.merged > 1 {
		p.Notes = append(p.Notes, fmt.Sprintf("listed %d times with the same spec; merged", in.merged))
	}
	return p, err
}

type serviceInput struct {
	ServiceInput
	merged  int
	refused string
}

// dedupe merges copies of one key with the same spec (they are equal, the first stands for
// all) and refuses a key whose copies differ: which one is meant is unknowable, and picking
// by list order would make the ruleset depend on it. It returns one entry per key in the
// order of first appearance, with the number of copies and whether they differ.
func dedupe[T any](in []T, key func(T) ObjectKey, spec func(T) any) (out []T, copies []int, differ []bool) {
	index := make(map[ObjectKey]int, len(in))
	for _, item := range in {
		i, seen := index[key(item)]
		if !seen {
			index[key(item)] = len(out)
			out, copies, differ = append(out, item), append(copies, 1), append(differ, false)
			continue
		}
		copies[i]++
		if !reflect.DeepEqual(spec(out[i]), spec(item)) {
			differ[i] = true
		}
	}
	return out, copies, differ
}

func duplicateRefusal(copies int) string {
	return fmt.Sprintf("listed %d times with different specs; refused (which one is meant is unknown)", copies)
}

func dedupePolicies(in []PolicyInput) []policyInput {
	items, copies, differ := dedupe(in, func(p PolicyInput) ObjectKey { return p.Key }, func(p PolicyInput) any { return p.Spec })
	out := make([]policyInput, len(items))
	for i, p := range items {
		out[i] = policyInput{PolicyInput: p, merged: copies[i]}
		if differ[i] {
			out[i].refused = duplicateRefusal(copies[i])
		}
	}
	return out
}

func dedupeServices(in []ServiceInput) []serviceInput {
	items, copies, differ := dedupe(in, func(s ServiceInput) ObjectKey { return s.Key }, func(s ServiceInput) any { return s.Spec })
	out := make([]serviceInput, len(items))
	for i, s := range items {
		out[i] = serviceInput{ServiceInput: s, merged: copies[i]}
		if differ[i] {
			out[i].refused = duplicateRefusal(copies[i])
		}
	}
	return out
}

// capPolicy enforces allowedNetworks: a listed peer outside the allowed networks refuses the
// policy; a rule that lists no peers ("every address") is narrowed to the allowed networks.
func (a *Allowed) capPolicy(p Policy) (Policy, error) {
	if a == nil {
		return p, nil
	}
	for _, dir := range []struct {
		name    string
		rules   []Rule
		allowed []netip.Prefix
	}{{"ingress", p.Ingress, a.Ingress}, {"egress", p.Egress, a.Egress}} {
		for i := range dir.rules {
			r := &dir.rules[i]
			if r.Everywhere {
				r.Peers = nil
				for _, pr := range dir.allowed {
					r.Peers = append(r.Peers, Peer{Prefix: pr})
				}
				p.Notes = append(p.Notes, fmt.Sprintf("%s[%d]: every address within allowedNetworks.%s", dir.name, r.Index, dir.name))
				continue
			}
			for _, peer := range r.Peers {
				if !containsPrefix(dir.allowed, peer.Prefix) {
					if dir.name == "ingress" {
						return Policy{}, fmt.Errorf("ingress from %s is outside allowedNetworks.ingress", peer.Prefix)
					}
					return Policy{}, fmt.Errorf("egress to %s is outside allowedNetworks.egress", peer.Prefix)
				}
			}
		}
	}
	return p, nil
}

// checkServiceIPs refuses a load-balancer IP that no cluster, private, DMZ or external
// network of the firewall holds: any cluster user can write spec.loadBalancerIP, and a rule
// towards an arbitrary address would open the firewall towards it. (External networks are
// allowed because metal-stack allocates LoadBalancer IPs there; the service rule matches only
// sources outside the cluster prefixes, so it never opens egress.)
func (fw Firewall) checkServiceIPs(s Service) error {
	if s.Type != LoadBalancer {
		return nil
	}
	for _, ip := range s.IPs {
		if !containsAddr(fw.ServicePrefixes, ip) {
			return fmt.Errorf("load-balancer IP %s is in no network of the firewall (%s); refused, a rule towards it would open the firewall towards it",
				ip, describePrefixes(fw.ServicePrefixes))
		}
	}
	return nil
}

func describePrefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "no cluster, private, DMZ or external network is known"
	}
	const show = 4
	var parts []string
	for i, p := range ps {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-show))
			break
		}
		parts = append(parts, p.String())
	}
	return "cluster, private, DMZ and external networks: " + strings.Join(parts, ", ")
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
