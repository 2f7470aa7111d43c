package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Applier is what the runner applies through (runner.Applier).
type Applier interface {
	Apply(ctx context.Context, desired *ruleset.Ruleset) (nft.Result, error)
}

// ApplyMetrics measures every apply: its duration, failures, the last success, and the
// size of every set and map of the applied ruleset (a sharded CWNP map counted as one).
type ApplyMetrics struct {
	duration    prometheus.Histogram
	failures    prometheus.Counter
	lastSuccess prometheus.Gauge
	setElements *prometheus.GaugeVec
}

// NewApplyMetrics registers the apply metrics on reg.
func NewApplyMetrics(reg prometheus.Registerer) *ApplyMetrics {
	m := &ApplyMetrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "nftables", Name: "apply_duration_seconds",
			Help:    "How long applying the ruleset took, failed applies included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "nftables", Name: "apply_failures_total",
			Help: "Applies of the ruleset that failed (the previous ruleset stayed).",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "nftables", Name: "last_apply_success_timestamp_seconds",
			Help: "When the ruleset was last applied successfully (Unix time).",
		}),
		setElements: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "nftables", Name: "set_elements",
			Help: "Elements of a set or verdict map in the last applied ruleset.",
		}, []string{"set"}),
	}
	reg.MustRegister(m.duration, m.failures, m.lastSuccess, m.setElements)
	return m
}

// Wrap returns an applier that measures a.
func (m *ApplyMetrics) Wrap(a Applier) Applier { return measured{inner: a, m: m} }

type measured struct {
	inner Applier
	m     *ApplyMetrics
}

func (w measured) Apply(ctx context.Context, desired *ruleset.Ruleset) (nft.Result, error) {
	start := time.Now()
	res, err := w.inner.Apply(ctx, desired)
	w.m.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		w.m.failures.Inc()
		return res, err
	}
	w.m.lastSuccess.SetToCurrentTime()
	w.m.setElements.Reset()
	// Per map as the user knows it: the shards of a CWNP map are summed.
	perMap := map[string]int{}
	for _, s := range desired.Sets {
		perMap[ruleset.LogicalMap(s.Name)] += len(s.Elements)
	}
	for name, n := range perMap {
		w.m.setElements.WithLabelValues(name).Set(float64(n))
	}
	return res, nil
}
