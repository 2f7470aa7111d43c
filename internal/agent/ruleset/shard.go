package ruleset

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// The CWNP maps with ports (cwnp_egress, cwnp_ingress per family) are the large ones: with
// 1,000 policies, cwnp_egress_v4 holds 3,000 elements. The kernel's concatenated interval
// maps (pipapo) do work in proportion to the map's size for every element removed, so a
// changed CIDR (three elements removed, three added) cost most of its time in the commit.
// Each of these maps is therefore split into MapShards kernel maps by a stable hash of the
// owning policy's chain: a policy's elements all live in one shard, so a change of one
// policy touches only that shard. The elements are resolved over the whole map before they
// are split, so they are disjoint across all shards and a packet matches at most one of
// them: one rule per shard (in a chain the forward chain jumps to, see shardChain) decides as
// the single map did.

// MapShards is how many kernel maps each CWNP map with ports is split into. It is fixed,
// independent of the input, so the chains do not grow with the policies. Every shard costs
// a new flow one more lookup: 4 shards took a one-CIDR change's commit from about 29 to
// 19 ms and cost a dropped first packet about 0.4 us; 8 shards gained 1-3 ms more for twice
// that (docs/benchmarks.md).
const MapShards = 4

// ShardName is the name of shard i of map (a CWNP map with ports, family suffix included),
// e.g. cwnp_egress_v4_3.
func ShardName(mapName string, i int) string { return fmt.Sprintf("%s_%d", mapName, i) }

// shardChainName is the chain that looks up the shards of map: the map's name without
// the cwnp_ prefix (egress_v4), so it cannot be taken for a policy's chain (cwnp-...).
func shardChainName(mapName string) string { return strings.TrimPrefix(mapName, "cwnp_") }

// shardChain looks a packet up in every shard of map (key: the address field, then protocol
// and port). A packet matches at most one element of all shards together (they are the
// parts of one resolved map), so the order of the shards is immaterial; a match goes to
// the policy's chain, no match returns to the forward chain.
func shardChain(mapName, addr string) Chain {
	c := Chain{Name: shardChainName(mapName)}
	for i := range MapShards {
		c.Rules = append(c.Rules, fmt.Sprintf("%s . meta l4proto . th dport vmap @%s", addr, ShardName(mapName, i)))
	}
	return c
}

// shardedMaps are the names of the maps that are split, per family.
var shardedMaps = func() map[string]string {
	byShard := map[string]string{}
	for _, f := range families {
		for _, m := range []string{MapEgress, MapIngress} {
			for i := range MapShards {
				byShard[ShardName(m+f.suffix, i)] = m + f.suffix
			}
		}
	}
	return byShard
}()

// LogicalMap returns the map a kernel set belongs to: for a shard the name of the whole
// CWNP map (cwnp_egress_v4_3 -> cwnp_egress_v4), any other name unchanged. Readers that
// report per map (metrics) use it.
func LogicalMap(set string) string {
	if m, ok := shardedMaps[set]; ok {
		return m
	}
	return set
}

// shardMap splits a resolved CWNP map into its shards, keeping the elements' order.
func shardMap(m Set) []Set {
	shards := make([]Set, MapShards)
	for i := range shards {
		shards[i] = Set{Name: ShardName(m.Name, i), Comment: fmt.Sprintf("%s, shard %d of %d", m.Comment, i+1, MapShards),
			Type: m.Type, Map: m.Map, Interval: m.Interval}
	}
	var last string
	var lastShard int
	for _, e := range m.Elements {
		if e.Value != last { // consecutive elements mostly share an owner
			last, lastShard = e.Value, shardOf(e.Value)
		}
		shards[lastShard].Elements = append(shards[lastShard].Elements, e)
	}
	return shards
}

// shardOf picks the shard of an element by its verdict (goto <policy chain>): the chain's
// name is derived from the policy's key alone, so a policy stays in its shard across
// renders, whatever else changes.
func shardOf(verdict string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.TrimPrefix(verdict, "goto ")))
	return int(h.Sum32() % MapShards)
}
