package metrics

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Counter is what one named nftables counter counted.
type Counter struct {
	Packets, Bytes uint64
}

// CounterReader reads every named counter of the agent's table (nft.Netlink does, through
// a small adapter), keyed by counter name.
type CounterReader func(ctx context.Context) (map[string]Counter, error)

// owner is the object a counter belongs to.
type owner struct {
	kind string // "cwnp" or "service"
	key  model.ObjectKey
}

// NftablesCollector exports the named counters of the agent's table at every scrape. It
// learns which counter belongs to which policy or service from the runner's verdicts (it
// is a runner.Reporter), so the objects' names become labels.
type NftablesCollector struct {
	Read CounterReader

	mu     sync.Mutex
	owners map[string]owner

	cwnpPackets, cwnpBytes *prometheus.Desc
	svcPackets, svcBytes   *prometheus.Desc
	rulePackets, ruleBytes *prometheus.Desc
	deviceBytes            *prometheus.Desc
	up                     *prometheus.Desc
}

// NewNftablesCollector returns a collector reading through read.
func NewNftablesCollector(read CounterReader) *NftablesCollector {
	objLabels := []string{"source", "namespace", "name"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "nftables", name), help, labels, nil)
	}
	return &NftablesCollector{
		Read:        read,
		owners:      map[string]owner{},
		cwnpPackets: d("cwnp_packets_total", "Packets accepted by a ClusterwideNetworkPolicy.", objLabels...),
		cwnpBytes:   d("cwnp_bytes_total", "Bytes accepted by a ClusterwideNetworkPolicy.", objLabels...),
		svcPackets:  d("service_packets_total", "Packets accepted for a Service.", objLabels...),
		svcBytes:    d("service_bytes_total", "Bytes accepted for a Service.", objLabels...),
		rulePackets: d("rule_packets_total", "Packets counted by a named rule of the agent's table.", "rule", "action"),
		ruleBytes:   d("rule_bytes_total", "Bytes counted by a named rule of the agent's table.", "rule", "action"),
		deviceBytes: d("device_bytes_total", "Traffic into (in) and out of (out) the cluster, internal or external.", "device", "direction"),
		up:          d("up", "1 when the counters could be read at the last scrape."),
	}
}

// Report implements runner.Reporter: it remembers the counter names of the accepted objects.
func (c *NftablesCollector) Report(_ context.Context, verdicts []model.Verdict, _ bool) {
	owners := make(map[string]owner, len(verdicts))
	for _, v := range verdicts {
		if !v.Accepted {
			continue
		}
		switch v.Kind {
		case "ClusterwideNetworkPolicy":
			owners[ruleset.PolicyCounter(v.Key)] = owner{kind: "cwnp", key: v.Key}
		case "Service":
			owners[ruleset.ServiceCounter(v.Key)] = owner{kind: "service", key: v.Key}
		}
	}
	c.mu.Lock()
	c.owners = owners
	c.mu.Unlock()
}

// DisplayName names a counter for the status: "cwnp <namespace/name>" or
// "service <namespace/name>" for the accepted objects, the counter name otherwise.
func (c *NftablesCollector) DisplayName(counter string) string {
	c.mu.Lock()
	o, ok := c.owners[counter]
	c.mu.Unlock()
	if !ok {
		return counter
	}
	name := o.key.Name
	if o.key.Namespace != "" {
		name = o.key.Namespace + "/" + name
	}
	return o.kind + " " + name
}

// Describe implements prometheus.Collector.
func (c *NftablesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cwnpPackets, c.cwnpBytes, c.svcPackets, c.svcBytes,
		c.rulePackets, c.ruleBytes, c.deviceBytes, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *NftablesCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	values, err := c.Read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	c.mu.Lock()
	owners := c.owners
	c.mu.Unlock()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for name, v := range values {
		if o, ok := owners[name]; ok {
			packets, bytes := c.cwnpPackets, c.cwnpBytes
			if o.kind == "service" {
				packets, bytes = c.svcPackets, c.svcBytes
			}
			counter(packets, v.Packets, o.key.Source, o.key.Namespace, o.key.Name)
			counter(bytes, v.Bytes, o.key.Source, o.key.Namespace, o.key.Name)
			continue
		}
		if dev, dir, ok := accounting(name); ok {
			counter(c.deviceBytes, v.Bytes, dev, dir)
			continue
		}
		if strings.HasPrefix(name, "cwnp-") || strings.HasPrefix(name, "svc-") {
			continue // an object the last verdicts did not accept (being removed)
		}
		counter(c.rulePackets, v.Packets, name, Action(name))
		counter(c.ruleBytes, v.Bytes, name, Action(name))
	}
}

// accounting splits the accounting counters internal_in, external_out, ...
func accounting(name string) (device, direction string, ok bool) {
	dev, dir, found := strings.Cut(name, "_")
	if !found || (dev != "internal" && dev != "external") || (dir != "in" && dir != "out") {
		return "", "", false
	}
	return dev, dir, true
}

// Action classifies a named counter as the status does: accept, drop or other.
func Action(name string) string {
	switch {
	case name == ruleset.CounterEstablished, strings.HasPrefix(name, "cwnp-"), strings.HasPrefix(name, "svc-"):
		return "accept"
	case name == ruleset.CounterDropped, name == ruleset.CounterInvalid, name == ruleset.CounterRateLimit:
		return "drop"
	}
	return "other"
}
