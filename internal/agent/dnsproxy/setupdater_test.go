package dnsproxy

import (
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// A restore of many addresses goes through in several batches; a set that does not exist
// fails alone, the others still get their addresses; a second add sets the timeout anew.
func TestNftSetsAdd(t *testing.T) {
	port := int32(443)
	policies, _ := model.ComposePolicies(model.Firewall{}, []model.PolicyInput{{Key: model.ObjectKey{Source: "shoot", Namespace: "firewall", Name: "p"},
		Spec: model.PolicySpec{Egress: []model.EgressRule{{Ports: []model.PolicyPort{{Port: &port}}, ToFQDNs: []model.FQDNSelector{{MatchPattern: "*"}}}}}}})
	targets := ruleset.FQDNTargets(policies)
	ns := scratchTable(t, targets)
	sets := &NftSets{Kernel: scratchNetlink(t, ns)}

	// One batch of this many would exceed the netlink send buffer.
	const many = 20000
	var elems []Element
	for i := range many {
		elems = append(elems, Element{Set: targets[0].SetV4, Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Timeout: time.Hour})
	}
	elems = append(elems, Element{Set: targets[0].SetV6, Addr: netip.MustParseAddr("2001:db8::1"), Timeout: time.Hour})
	if err := sets.Add(context.Background(), elems); err != nil {
		t.Fatal(err)
	}
	if n := countElements(t, ns, targets[0].SetV4); n != many {
		t.Errorf("%d elements in the v4 set, want %d", n, many)
	}
	if n := countElements(t, ns, targets[0].SetV6); n != 1 {
		t.Errorf("%d elements in the v6 set, want 1", n)
	}

	err := sets.Add(context.Background(), []Element{
		{Set: "fqdn-gone_v4", Addr: netip.MustParseAddr("192.0.2.1"), Timeout: time.Minute},
		{Set: targets[0].SetV4, Addr: netip.MustParseAddr("192.0.2.2"), Timeout: time.Minute},
	})
	if err == nil || !strings.Contains(err.Error(), "fqdn-gone_v4") {
		t.Errorf("missing set: %v", err)
	}
	if n := countElements(t, ns, targets[0].SetV4); n != many+1 {
		t.Errorf("%d elements after a partly failed add, want %d", n, many+1)
	}
	if err := sets.Add(context.Background(), []Element{{Set: targets[0].SetV4, Addr: netip.MustParseAddr("192.0.2.2"), Timeout: 2 * time.Hour}}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "firewall", targets[0].SetV4).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "192.0.2.2 timeout 2h") {
		t.Errorf("timeout not renewed (%v)", err)
	}
}

func countElements(t *testing.T, ns string, set string) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-j", "list", "set", "inet", "firewall", set).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list set: %v %s", err, out)
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	for _, o := range doc.Nftables {
		if o.Set != nil {
			return len(o.Set.Elem)
		}
	}
	return 0
}
