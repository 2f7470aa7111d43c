package manager

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// metrics exposes fleet gauges computed from the informer cache at scrape time (no API calls)
// and a rollout duration histogram.
type metrics struct {
	reader   client.Reader
	rollouts *prometheus.HistogramVec
	phase    *prometheus.Desc
	ready    *prometheus.Desc
	target   *prometheus.Desc
	// Conditions as 1-valued series, so alerts can name a condition, status and reason.
	firewallCondition   *prometheus.Desc
	deploymentCondition *prometheus.Desc
}

func newMetrics(reader client.Reader) *metrics {
	return &metrics{
		reader: reader,
		rollouts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "palisade_firewalldeployment_rollout_duration_seconds",
			Help:    "Time from creating a new FirewallSet until it carries the traffic.",
			Buckets: prometheus.ExponentialBuckets(15, 2, 10),
		}, []string{"namespace"}),
		phase:  prometheus.NewDesc("palisade_firewalls", "Firewalls by namespace and phase.", []string{"namespace", "phase"}, nil),
		ready:  prometheus.NewDesc("palisade_firewalldeployment_ready_replicas", "Ready firewalls of a deployment, across all its sets (the old ones during a roll included).", []string{"namespace", "name"}, nil),
		target: prometheus.NewDesc("palisade_firewalldeployment_target_replicas", "Desired firewalls of a deployment.", []string{"namespace", "name"}, nil),
		firewallCondition: prometheus.NewDesc("palisade_firewall_condition",
			"A firewall's status conditions (value 1) by type, status and reason.", []string{"namespace", "name", "type", "status", "reason"}, nil),
		deploymentCondition: prometheus.NewDesc("palisade_firewalldeployment_condition",
			"A deployment's status conditions (value 1) by type, status and reason.", []string{"namespace", "name", "type", "status", "reason"}, nil),
	}
}

func (m *metrics) register() error {
	for _, c := range []prometheus.Collector{m.rollouts, m} {
		if err := crmetrics.Registry.Register(c); err != nil {
			if _, already := err.(prometheus.AlreadyRegisteredError); !already {
				return err
			}
		}
	}
	return nil
}

func (m *metrics) observeRollout(namespace, _ string, d time.Duration) {
	m.rollouts.WithLabelValues(namespace).Observe(d.Seconds())
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.phase
	ch <- m.ready
	ch <- m.target
	ch <- m.firewallCondition
	ch <- m.deploymentCondition
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var fws v2.FirewallList
	if err := m.reader.List(ctx, &fws); err == nil {
		counts := map[[2]string]int{}
		for _, fw := range fws.Items {
			phase := string(fw.Status.Phase)
			if phase == "" {
				phase = "Pending"
			}
			counts[[2]string{fw.Namespace, phase}]++
			for _, c := range fw.Status.Conditions {
				ch <- prometheus.MustNewConstMetric(m.firewallCondition, prometheus.GaugeValue, 1, fw.Namespace, fw.Name, c.Type, string(c.Status), c.Reason)
			}
		}
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(m.phase, prometheus.GaugeValue, float64(n), k[0], k[1])
		}
	}
	var deploys v2.FirewallDeploymentList
	if err := m.reader.List(ctx, &deploys); err == nil {
		for _, d := range deploys.Items {
			ch <- prometheus.MustNewConstMetric(m.ready, prometheus.GaugeValue, float64(d.Status.ReadyReplicas), d.Namespace, d.Name)
			ch <- prometheus.MustNewConstMetric(m.target, prometheus.GaugeValue, float64(d.Spec.Replicas), d.Namespace, d.Name)
			for _, c := range d.Status.Conditions {
				ch <- prometheus.MustNewConstMetric(m.deploymentCondition, prometheus.GaugeValue, 1, d.Namespace, d.Name, c.Type, string(c.Status), c.Reason)
			}
		}
	}
}
