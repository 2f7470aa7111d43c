package metal

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics registers the client metrics on reg. Several clients may share
// one registry: an already registered collector is reused.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "palisade_metal_api_requests_total",
		Help: "metal-api HTTP requests by operation and status code (\"error\" when no response arrived).",
	}, []string{"operation", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "palisade_metal_api_request_duration_seconds",
		Help:    "Duration of single metal-api HTTP requests (each retry attempt counts separately).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"operation"})
	var err error
	if requests, err = registerOrReuse(reg, requests); err != nil {
		return nil, err
	}
	if duration, err = registerOrReuse(reg, duration); err != nil {
		return nil, err
	}
	return &metrics{requests: requests, duration: duration}, nil
}

func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *metrics) observe(op, code string, seconds float64) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(op, code).Inc()
	m.duration.WithLabelValues(op).Observe(seconds)
}
