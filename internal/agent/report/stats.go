package report

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Rule actions as the FirewallMonitor groups counters.
const (
	ActionAccept = "accept"
	ActionDrop   = "drop"
	ActionOther  = "other"
)

// CounterSource reads the named counters of the agent's table (nft.Netlink does).
type CounterSource interface {
	Counters(ctx context.Context) (map[string]nft.CounterValue, error)
}

// Stats collects the monitor's statistics: every named counter of the agent's table by
// action (named counters survive ruleset updates, so these grow monotonically), the
// accounting counters as the devices "internal" and "external", and the byte counters of
// every network interface from sysRoot/class/net (sysRoot is normally /sys).
func Stats(ctx context.Context, counters CounterSource, sysRoot string) (*v2.FirewallStats, error) {
	return StatsNamed(ctx, counters, sysRoot, nil)
}

// StatsNamed is Stats with the rules keyed by display(counter name), e.g. the policy's
// name instead of its hashed counter name, so that `kubectl describe` reads like seed 003.
func StatsNamed(ctx context.Context, counters CounterSource, sysRoot string, display func(string) string) (*v2.FirewallStats, error) {
	values, err := counters.Counters(ctx)
	if err != nil {
		return nil, err
	}
	stats := &v2.FirewallStats{
		RuleStats:   v2.RuleStatsByAction{ActionAccept: {}, ActionDrop: {}, ActionOther: {}},
		DeviceStats: v2.DeviceStatsByDevice{},
	}
	for name, v := range values {
		key := name
		if display != nil {
			key = display(name)
		}
		stats.RuleStats[actionOf(name)][key] = v2.RuleStat{Counter: v2.Counter{Bytes: v.Bytes, Packets: v.Packets}}
	}
	for _, dir := range []string{"internal", "external"} {
		in, out := values[dir+"_in"].Bytes, values[dir+"_out"].Bytes
		stats.DeviceStats[dir] = v2.DeviceStat{InBytes: in, OutBytes: out, TotalBytes: in + out}
	}
	if sysRoot != "" {
		for dev, st := range interfaceBytes(sysRoot) {
			if _, taken := stats.DeviceStats[dev]; !taken {
				stats.DeviceStats[dev] = st
			}
		}
	}
	return stats, nil
}

// actionOf classifies a counter by the rule it belongs to.
func actionOf(name string) string {
	switch {
	case name == ruleset.CounterEstablished, strings.HasPrefix(name, "cwnp-"), strings.HasPrefix(name, "svc-"):
		return ActionAccept
	case name == ruleset.CounterDropped, name == ruleset.CounterInvalid, name == ruleset.CounterRateLimit:
		return ActionDrop
	}
	return ActionOther
}

// interfaceBytes reads rx/tx bytes of every interface but loopback.
func interfaceBytes(sysRoot string) map[string]v2.DeviceStat {
	out := map[string]v2.DeviceStat{}
	dirs, err := os.ReadDir(filepath.Join(sysRoot, "class", "net"))
	if err != nil {
		return out
	}
	read := func(dev, file string) uint64 {
		b, err := os.ReadFile(filepath.Join(sysRoot, "class", "net", dev, "statistics", file))
		if err != nil {
			return 0
		}
		v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return v
	}
	for _, d := range dirs {
		dev := d.Name()
		if dev == "lo" {
			continue
		}
		in, o := read(dev, "rx_bytes"), read(dev, "tx_bytes")
		out[dev] = v2.DeviceStat{InBytes: in, OutBytes: o, TotalBytes: in + o}
	}
	return out
}
