package fwutil

import (
	"sort"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// Weight is the firewall's weight annotation, 0 when absent or unparsable.
func Weight(fw *v2.Firewall) int32 {
	w, err := strconv.ParseInt(fw.Annotations[v2.WeightAnnotation], 10, 32)
	if err != nil {
		return 0
	}
	return int32(w)
}

// SortByImportance orders firewalls from most to least important: higher weight first, then
// healthier (connected, ready, created), then shorter distance, then younger. The most important
// firewall gets the shortest distance and is the last to go on scale-down.
func SortByImportance(fws []*v2.Firewall) {
	sort.SliceStable(fws, func(i, j int) bool {
		a, b := fws[i], fws[j]
		if wa, wb := Weight(a), Weight(b); wa != wb {
			return wa > wb
		}
		for _, c := range []string{v2.ConditionConnected, v2.ConditionReady, v2.ConditionCreated} {
			ta, tb := meta.IsStatusConditionTrue(a.Status.Conditions, c), meta.IsStatusConditionTrue(b.Status.Conditions, c)
			if ta != tb {
				return ta
			}
		}
		if a.Distance != b.Distance {
			return a.Distance < b.Distance
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return b.CreationTimestamp.Before(&a.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// DistanceFor is the distance of the firewall at position index in importance order: the set's
// distance for the first, +1 for the second, +2 for the rest, capped at the longest distance.
func DistanceFor(setDistance v2.FirewallDistance, index int) v2.FirewallDistance {
	add := min(index, 2)
	d := int(setDistance) + add
	if d > int(v2.FirewallLongestDistance) {
		d = int(v2.FirewallLongestDistance)
	}
	return v2.FirewallDistance(d)
}
