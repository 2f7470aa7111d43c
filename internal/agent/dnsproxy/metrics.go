package dnsproxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the DNS proxy's collectors. NewMetrics registers them; the agent's metrics
// endpoint serves whatever registry it hands in.
type Metrics struct {
	answers        *prometheus.CounterVec
	matched        prometheus.Counter
	setUpdates     *prometheus.CounterVec
	updateLatency  prometheus.Histogram
	upstreamErrors prometheus.Counter
	refused        *prometheus.CounterVec
	cacheNames     prometheus.Gauge
	cacheAddresses prometheus.Gauge
}

// NewMetrics creates the collectors and registers them with reg (nil: not registered, e.g.
// in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "palisade_agent", "dns"
	m := &Metrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "answers_total",
			Help: "Answers the DNS proxy released to clients, by transport (udp, tcp) and rcode."}, []string{"transport", "rcode"}),
		matched: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "answers_matched_total",
			Help: "Answers with a name selected by a toFQDNs rule."}),
		setUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "set_updates_total",
			Help: "Netlink batches that wrote learned addresses into the nftables sets, by result (ok, error)."}, []string{"result"}),
		updateLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "set_update_seconds",
			Help:    "Time from the upstream answer to the addresses being in the kernel (the answer is held meanwhile).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		upstreamErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "upstream_errors_total",
			Help: "Queries no upstream resolver answered; the client got SERVFAIL."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "addresses_refused_total",
			Help: "Learned addresses not opened, by reason (cache_full, allowed_networks)."}, []string{"reason"}),
		cacheNames: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_names",
			Help: "Names with learned addresses."}),
		cacheAddresses: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_addresses",
			Help: "Learned addresses over all names."}),
	}
	if reg != nil {
		reg.MustRegister(m.answers, m.matched, m.setUpdates, m.updateLatency, m.upstreamErrors, m.refused, m.cacheNames, m.cacheAddresses)
	}
	return m
}
