package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Counters of accepted objects carry the object's name; other named counters their rule
// name and action; objects no longer accepted disappear; a failed read says up 0.
func TestNftablesCollectorLabelsByName(t *testing.T) {
	web := model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: "allow-web"}
	svc := model.ObjectKey{Source: "shoot", Namespace: "shop", Name: "frontend"}
	gone := model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: "refused"}
	values := map[string]Counter{
		ruleset.PolicyCounter(web):  {Packets: 12, Bytes: 1200},
		ruleset.ServiceCounter(svc): {Packets: 3, Bytes: 300},
		ruleset.PolicyCounter(gone): {Packets: 1, Bytes: 1},
		ruleset.CounterDropped:      {Packets: 51, Bytes: 2528},
		"external_in":               {Packets: 9, Bytes: 91696},
	}
	var readErr error
	c := NewNftablesCollector(func(context.Context) (map[string]Counter, error) { return values, readErr })
	c.Report(context.Background(), []model.Verdict{
		{Key: web, Kind: "ClusterwideNetworkPolicy", Accepted: true},
		{Key: svc, Kind: "Service", Accepted: true},
		{Key: gone, Kind: "ClusterwideNetworkPolicy", Accepted: false},
	}, true)
	want := `
# HELP palisade_nftables_cwnp_packets_total Packets accepted by a ClusterwideNetworkPolicy.
# TYPE palisade_nftables_cwnp_packets_total counter
palisade_nftables_cwnp_packets_total{name="allow-web",namespace="firewall",source="shoot"} 12
# HELP palisade_nftables_service_bytes_total Bytes accepted for a Service.
# TYPE palisade_nftables_service_bytes_total counter
palisade_nftables_service_bytes_total{name="frontend",namespace="shop",source="shoot"} 300
# HELP palisade_nftables_rule_packets_total Packets counted by a named rule of the agent's table.
# TYPE palisade_nftables_rule_packets_total counter
palisade_nftables_rule_packets_total{action="drop",rule="drop_total"} 51
# HELP palisade_nftables_device_bytes_total Traffic into (in) and out of (out) the cluster, internal or external.
# TYPE palisade_nftables_device_bytes_total counter
palisade_nftables_device_bytes_total{device="external",direction="in"} 91696
# HELP palisade_nftables_up 1 when the counters could be read at the last scrape.
# TYPE palisade_nftables_up gauge
palisade_nftables_up 1
`
	names := []string{"palisade_nftables_cwnp_packets_total", "palisade_nftables_service_bytes_total",
		"palisade_nftables_rule_packets_total", "palisade_nftables_device_bytes_total", "palisade_nftables_up"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if got := c.DisplayName(ruleset.PolicyCounter(web)); got != "cwnp firewall/allow-web" {
		t.Errorf("display name %q", got)
	}
	if got := c.DisplayName(ruleset.CounterDropped); got != ruleset.CounterDropped {
		t.Errorf("display name %q", got)
	}
	readErr = errors.New("netlink: permission denied")
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP palisade_nftables_up 1 when the counters could be read at the last scrape.
# TYPE palisade_nftables_up gauge
palisade_nftables_up 0
`), "palisade_nftables_up"); err != nil {
		t.Error(err)
	}
}
