// Package ids reads suricata's statistics from its eve.json log: the newest `stats` record
// gives, per interface, the packets captured, the packets the kernel dropped and the
// invalid packets, as the FirewallMonitor's idsStats and as metrics.
//
// Suricata names its capture worker threads "W#<n>-<interface>" (af-packet, pcap), so with
// per-thread stats enabled (eve-log `stats: {threads: yes}`) the counters are split by
// interface; without them the totals are reported under the name "total".
package ids

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// TotalInterface names the totals when the record has no per-thread counters.
const TotalInterface = "total"

// maxTail bounds how much of the end of eve.json is read to find the newest stats record.
const maxTail = 4 << 20

// Counters are one interface's counters.
type Counters struct {
	Packets, Drops, Invalid uint64
}

// Stats is one stats record.
type Stats struct {
	Time       time.Time
	Interfaces map[string]Counters
}

type record struct {
	Timestamp string `json:"timestamp"`
	EventType string `json:"event_type"`
	Stats     *struct {
		counterGroups
		Threads map[string]counterGroups `json:"threads"`
	} `json:"stats"`
}

type counterGroups struct {
	Capture *struct {
		KernelPackets uint64 `json:"kernel_packets"`
		KernelDrops   uint64 `json:"kernel_drops"`
	} `json:"capture"`
	Decoder *struct {
		Pkts    uint64 `json:"pkts"`
		Invalid uint64 `json:"invalid"`
	} `json:"decoder"`
}

func (g counterGroups) counters() Counters {
	var c Counters
	if g.Capture != nil {
		c.Packets, c.Drops = g.Capture.KernelPackets, g.Capture.KernelDrops
	}
	if g.Decoder != nil {
		if c.Packets == 0 {
			c.Packets = g.Decoder.Pkts
		}
		c.Invalid = g.Decoder.Invalid
	}
	return c
}

// ErrNoStats means the log holds no stats record (yet).
var ErrNoStats = errors.New("no stats record in eve.json")

// ParseLine parses one eve.json line; ok is false for other event types.
func ParseLine(line []byte) (Stats, bool, error) {
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		return Stats{}, false, err
	}
	if r.EventType != "stats" || r.Stats == nil {
		return Stats{}, false, nil
	}
	s := Stats{Interfaces: map[string]Counters{}}
	if t, err := time.Parse("2006-01-02T15:04:05.999999-0700", r.Timestamp); err == nil {
		s.Time = t
	}
	for thread, g := range r.Stats.Threads {
		iface, ok := threadInterface(thread)
		if !ok {
			continue
		}
		c, add := s.Interfaces[iface], g.counters()
		c.Packets += add.Packets
		c.Drops += add.Drops
		c.Invalid += add.Invalid
		s.Interfaces[iface] = c
	}
	if len(s.Interfaces) == 0 {
		s.Interfaces[TotalInterface] = r.Stats.counters()
	}
	return s, true, nil
}

// threadInterface takes the interface from a worker thread name "W#01-eth0".
func threadInterface(thread string) (string, bool) {
	if !strings.HasPrefix(thread, "W#") {
		return "", false
	}
	_, iface, ok := strings.Cut(thread, "-")
	return iface, ok && iface != ""
}

// Latest returns the newest stats record of the eve.json at path.
func Latest(path string) (Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Stats{}, err
	}
	offset := max(info.Size()-maxTail, 0)
	data, err := io.ReadAll(io.NewSectionReader(f, offset, info.Size()-offset))
	if err != nil {
		return Stats{}, err
	}
	lines := bytes.Split(data, []byte{'\n'})
	for i := len(lines) - 1; i >= 0; i-- {
		line := bytes.TrimSpace(lines[i])
		if !bytes.Contains(line, []byte(`"stats"`)) {
			continue
		}
		s, ok, err := ParseLine(line)
		if err != nil {
			continue // a line cut by the tail window or still being written
		}
		if ok {
			return s, nil
		}
	}
	return Stats{}, ErrNoStats
}

// Source reads the stats for the status and exports them as metrics.
type Source struct {
	EveFile string

	mu   sync.Mutex
	last Stats

	packets, drops, invalid *prometheus.Desc
	age                     *prometheus.Desc
}

// NewSource reads eveFile.
func NewSource(eveFile string) *Source {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("palisade", "ids", name), help, labels, nil)
	}
	return &Source{
		EveFile: eveFile,
		packets: d("packets", "Packets suricata captured on an interface (its latest stats record).", "interface"),
		drops:   d("drops", "Packets the kernel dropped before suricata saw them.", "interface"),
		invalid: d("invalid_packets", "Packets suricata's decoder found invalid.", "interface"),
		age:     d("stats_timestamp_seconds", "When suricata wrote the stats record reported (Unix time)."),
	}
}

// Read returns the stats by interface in the status format.
func (s *Source) Read(context.Context) (v2.IDSStatsByDevice, error) {
	st, err := Latest(s.EveFile)
	if err != nil {
		return nil, fmt.Errorf("IDS statistics: %w", err)
	}
	s.mu.Lock()
	s.last = st
	s.mu.Unlock()
	out := v2.IDSStatsByDevice{}
	for iface, c := range st.Interfaces {
		out[iface] = v2.InterfaceStat{Packets: int(c.Packets), Drop: int(c.Drops), InvalidChecksums: int(c.Invalid)}
	}
	return out, nil
}

// Describe implements prometheus.Collector.
func (s *Source) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.packets
	ch <- s.drops
	ch <- s.invalid
	ch <- s.age
}

// Collect implements prometheus.Collector; it reads the file again.
func (s *Source) Collect(ch chan<- prometheus.Metric) {
	st, err := Latest(s.EveFile)
	if err != nil {
		return
	}
	for iface, c := range st.Interfaces {
		ch <- prometheus.MustNewConstMetric(s.packets, prometheus.GaugeValue, float64(c.Packets), iface)
		ch <- prometheus.MustNewConstMetric(s.drops, prometheus.GaugeValue, float64(c.Drops), iface)
		ch <- prometheus.MustNewConstMetric(s.invalid, prometheus.GaugeValue, float64(c.Invalid), iface)
	}
	if !st.Time.IsZero() {
		ch <- prometheus.MustNewConstMetric(s.age, prometheus.GaugeValue, float64(st.Time.Unix()))
	}
}
