package ids

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLatestTakesTheNewestCompleteStatsRecordByInterface(t *testing.T) {
	st, err := Latest("testdata/eve.json")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Counters{
		"vrf104009": {Packets: 4997276, Drops: 1992, Invalid: 0},
		"vlan179":   {Packets: 42, Drops: 0, Invalid: 1},
	}
	if len(st.Interfaces) != len(want) {
		t.Fatalf("interfaces %v, want %v", st.Interfaces, want)
	}
	for iface, c := range want {
		if st.Interfaces[iface] != c {
			t.Errorf("%s: %+v, want %+v", iface, st.Interfaces[iface], c)
		}
	}
	if st.Time.IsZero() || st.Time.Second() != 16 {
		t.Errorf("time %v", st.Time)
	}
}

func TestParseLine(t *testing.T) {
	lines, _ := os.ReadFile("testdata/eve.json")
	all := strings.Split(string(lines), "\n")
	cases := []struct {
		name  string
		line  string
		ok    bool
		err   bool
		total Counters
	}{
		{name: "flow event", line: all[0]},
		{name: "alert event", line: all[2]},
		{name: "totals only", line: all[1], ok: true, total: Counters{Packets: 4000000, Drops: 1500, Invalid: 3}},
		{name: "cut line", line: all[4], err: true},
		{name: "decoder only", line: `{"event_type":"stats","stats":{"decoder":{"pkts":7,"invalid":2}}}`, ok: true, total: Counters{Packets: 7, Invalid: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, ok, err := ParseLine([]byte(c.line))
			if (err != nil) != c.err || ok != c.ok {
				t.Fatalf("ok %v err %v", ok, err)
			}
			if ok && st.Interfaces[TotalInterface] != c.total {
				t.Errorf("totals %+v, want %+v", st.Interfaces[TotalInterface], c.total)
			}
		})
	}
}

func TestSourceStatusAndMetrics(t *testing.T) {
	src := NewSource("testdata/eve.json")
	stats, err := src.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s := stats["vrf104009"]; s.Packets != 4997276 || s.Drop != 1992 {
		t.Errorf("status %+v", stats)
	}
	expected := `
# HELP palisade_ids_drops Packets the kernel dropped before suricata saw them.
# TYPE palisade_ids_drops gauge
palisade_ids_drops{interface="vlan179"} 0
palisade_ids_drops{interface="vrf104009"} 1992
`
	if err := testutil.CollectAndCompare(src, strings.NewReader(expected), "palisade_ids_drops"); err != nil {
		t.Error(err)
	}
}

func TestMissingOrEmptyLog(t *testing.T) {
	dir := t.TempDir()
	if _, err := Latest(filepath.Join(dir, "none.json")); err == nil {
		t.Error("missing file: no error")
	}
	empty := filepath.Join(dir, "eve.json")
	if err := os.WriteFile(empty, []byte(`{"event_type":"flow"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Latest(empty); err != ErrNoStats {
		t.Errorf("no stats: %v", err)
	}
}
