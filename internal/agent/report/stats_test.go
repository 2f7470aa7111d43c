package report

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/nft"
)

type fixedCounters map[string]nft.CounterValue

func (f fixedCounters) Counters(context.Context) (map[string]nft.CounterValue, error) { return f, nil }

func TestStatsByActionAndDevice(t *testing.T) {
	sys := t.TempDir()
	for dev, v := range map[string][2]string{"vlan104009": {"1000\n", "2000\n"}, "lo": {"7\n", "7\n"}} {
		dir := filepath.Join(sys, "class", "net", dev, "statistics")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, "rx_bytes"), []byte(v[0]), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "tx_bytes"), []byte(v[1]), 0o644)
	}
	counters := fixedCounters{
		"cwnp-1a2b3c4d-firewall/web": {Packets: 3, Bytes: 300},
		"svc-5e6f7a8b-shop/lb":       {Packets: 1, Bytes: 60},
		"accept_established":         {Packets: 10, Bytes: 1000},
		"drop_total":                 {Packets: 4, Bytes: 240},
		"drop_ratelimit":             {},
		"internal_in":                {Bytes: 11},
		"internal_out":               {Bytes: 12},
		"external_in":                {Bytes: 21},
		"external_out":               {Bytes: 22},
		"snat-00000000-internet":     {Packets: 5, Bytes: 500},
	}
	st, err := Stats(context.Background(), counters, sys)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		ActionAccept: {"cwnp-1a2b3c4d-firewall/web", "svc-5e6f7a8b-shop/lb", "accept_established"},
		ActionDrop:   {"drop_total", "drop_ratelimit"},
		ActionOther:  {"internal_in", "snat-00000000-internet"},
	}
	for action, names := range want {
		for _, n := range names {
			if got, ok := st.RuleStats[action][n]; !ok || got.Counter != (v2.Counter{Bytes: counters[n].Bytes, Packets: counters[n].Packets}) {
				t.Errorf("%s/%s: %+v (present %v)", action, n, got, ok)
			}
		}
	}
	if st.DeviceStats["internal"] != (v2.DeviceStat{InBytes: 11, OutBytes: 12, TotalBytes: 23}) ||
		st.DeviceStats["external"] != (v2.DeviceStat{InBytes: 21, OutBytes: 22, TotalBytes: 43}) {
		t.Errorf("accounting devices: %+v", st.DeviceStats)
	}
	if st.DeviceStats["vlan104009"] != (v2.DeviceStat{InBytes: 1000, OutBytes: 2000, TotalBytes: 3000}) {
		t.Errorf("interface: %+v", st.DeviceStats)
	}
	if _, ok := st.DeviceStats["lo"]; ok {
		t.Error("loopback reported")
	}
}
