package droplog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Reasons a line was lost, as the metric label and in the lost markers receivers print.
const (
	LostRateLimit = "ratelimit" // more lines per second than the hub accepts
	LostUnread    = "unread"    // evicted from the buffer before any receiver read it
	LostOverrun   = "overrun"   // the kernel's nflog queue overflowed (count of overruns)
	LostMalformed = "malformed" // a packet that could not be parsed
)

// Record is one line of the stream: a packet's fields, or a marker saying how many lines
// were lost and why. Seq grows by one per record; Boot changes when the agent restarts.
type Record struct {
	Seq    uint64            `json:"seq"`
	Boot   string            `json:"boot"`
	Entry  map[string]string `json:"entry,omitempty"`
	Lost   uint64            `json:"lost,omitempty"`
	Reason string            `json:"reason,omitempty"`
}

// HubOptions configure a Hub.
type HubOptions struct {
	// Firewall is added to every entry as "firewall", to tell firewalls apart.
	Firewall string
	// Buffer is how many records are kept for receivers; default 4096.
	Buffer int
	// Rate and Burst bound the lines per second; default 100/s, burst 200.
	Rate  float64
	Burst int
	// Registerer receives the hub's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Hub keeps the newest records in a ring and streams them to receivers.
type Hub struct {
	opts    HubOptions
	boot    string
	limiter *rate.Limiter

	mu        sync.Mutex
	ring      []Record
	next      uint64 // seq of the next record; the first is 1
	delivered uint64 // highest seq any receiver has been sent
	pending   map[string]uint64
	changed   chan struct{}

	lines *prometheus.CounterVec
	lost  *prometheus.CounterVec
	recvs prometheus.Gauge
	nrecv int
}

// NewHub returns an empty hub.
func NewHub(opts HubOptions) *Hub {
	if opts.Buffer <= 0 {
		opts.Buffer = 4096
	}
	if opts.Rate <= 0 {
		opts.Rate = 100
	}
	if opts.Burst <= 0 {
		opts.Burst = 200
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	h := &Hub{
		opts:    opts,
		boot:    hex.EncodeToString(b),
		limiter: rate.NewLimiter(rate.Limit(opts.Rate), opts.Burst),
		next:    1,
		pending: map[string]uint64{},
		changed: make(chan struct{}),
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "palisade", Subsystem: "droplog", Name: "lines_total",
			Help: "Logged packets turned into lines, by action.",
		}, []string{"action"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "palisade", Subsystem: "droplog", Name: "lines_lost_total",
			Help: "Lines that no receiver got, by reason (ratelimit, unread, overrun, malformed).",
		}, []string{"reason"}),
		recvs: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "palisade", Subsystem: "droplog", Name: "receivers",
			Help: "Receivers streaming the lines right now.",
		}),
	}
	for _, r := range []string{LostRateLimit, LostUnread, LostOverrun, LostMalformed} {
		h.lost.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(h.lines, h.lost, h.recvs)
	}
	return h
}

// Add takes one packet's fields; lines above the rate are counted as lost.
func (h *Hub) Add(entry map[string]string) {
	if !h.limiter.Allow() {
		h.Lost(LostRateLimit, 1)
		return
	}
	if h.opts.Firewall != "" {
		entry["firewall"] = h.opts.Firewall
	}
	h.lines.WithLabelValues(entry["ACTION"]).Inc()
	h.mu.Lock()
	// Losses since the last line go in front of it, so receivers see them in order.
	for reason, n := range h.pending {
		h.appendLocked(Record{Lost: n, Reason: reason})
		delete(h.pending, reason)
	}
	h.appendLocked(Record{Entry: entry})
	h.mu.Unlock()
}

// Lost counts n lines lost for reason and tells receivers with the next line.
func (h *Hub) Lost(reason string, n uint64) {
	h.lost.WithLabelValues(reason).Add(float64(n))
	h.mu.Lock()
	h.pending[reason] += n
	h.mu.Unlock()
}

func (h *Hub) appendLocked(r Record) {
	r.Seq, r.Boot = h.next, h.boot
	h.next++
	if len(h.ring) == h.opts.Buffer {
		if old := h.ring[0]; old.Seq > h.delivered && old.Entry != nil {
			h.lost.WithLabelValues(LostUnread).Inc()
		}
		h.ring = append(h.ring[:0], h.ring[1:]...)
	}
	h.ring = append(h.ring, r)
	close(h.changed)
	h.changed = make(chan struct{})
}

// since returns the records after seq (a gap marker first when some were evicted), and a
// channel closed at the next change.
func (h *Hub) since(seq uint64) ([]Record, chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Record
	if len(h.ring) > 0 && h.ring[0].Seq > seq+1 && seq > 0 {
		out = append(out, Record{Seq: h.ring[0].Seq - 1, Boot: h.boot, Lost: h.ring[0].Seq - 1 - seq, Reason: LostUnread})
	}
	for _, r := range h.ring {
		if r.Seq > seq {
			out = append(out, r)
		}
	}
	if n := len(out); n > 0 && out[n-1].Seq > h.delivered {
		h.delivered = out[n-1].Seq
	}
	return out, h.changed
}

// ServeHTTP streams the records as JSON lines: GET ?after=SEQ&boot=BOOT continues after
// SEQ when BOOT is still the agent's boot, else starts with the oldest buffered record.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if r.URL.Query().Get("boot") != h.boot {
		after = 0
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	h.mu.Lock()
	h.nrecv++
	h.recvs.Set(float64(h.nrecv))
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.nrecv--
		h.recvs.Set(float64(h.nrecv))
		h.mu.Unlock()
	}()
	enc := json.NewEncoder(w)
	keepalive := time.NewTicker(30 * time.Second)
	defer keepalive.Stop()
	ctx := r.Context()
	for {
		records, changed := h.since(after)
		for _, rec := range records {
			if err := enc.Encode(rec); err != nil {
				return
			}
			after = rec.Seq
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-keepalive.C:
			// An empty line keeps proxies and the receiver's idle timeout from closing the stream.
			if _, err := w.Write([]byte("\n")); err != nil {
				return
			}
		}
	}
}

// Wait blocks until the hub holds a record after seq or ctx ends (for tests and tools).
func (h *Hub) Wait(ctx context.Context, seq uint64) []Record {
	for {
		h.mu.Lock()
		var out []Record
		for _, r := range h.ring {
			if r.Seq > seq {
				out = append(out, r)
			}
		}
		changed := h.changed
		h.mu.Unlock()
		if len(out) > 0 {
			return out
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
