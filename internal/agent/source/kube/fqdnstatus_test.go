package kube

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/dnsproxy"
	"github.com/palisade-fw/palisade/internal/agent/model"
)

// fqdn_state is written in upstream's shape, only when it changed, and the cap message shows
// up as a condition.
func TestFQDNStatusWriter(t *testing.T) {
	ctx := context.Background()
	obj := &v1.ClusterwideNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "github", Namespace: "firewall", Generation: 1}}
	patches := 0
	c := fake.NewClientBuilder().WithScheme(Scheme()).WithStatusSubresource(&v1.ClusterwideNetworkPolicy{}).WithObjects(obj).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			patches++
			return c.SubResource(sub).Patch(ctx, o, p, opts...)
		}}).Build()
	key := model.ObjectKey{Source: SourceShoot, Namespace: "firewall", Name: "github"}
	exp := time.Date(2026, 1, 1, 12, 0, 0, 500, time.UTC)
	state := dnsproxy.PolicyState{Selectors: map[string][]dnsproxy.NameState{
		"api.github.com": {
			{Name: "api.github.com.", Set: "fqdn-x-0_v4", Expires: map[netip.Addr]time.Time{netip.MustParseAddr("192.0.2.1"): exp}},
			{Name: "api.github.com.", Set: "fqdn-x-0_v6", IPv6: true, Expires: map[netip.Addr]time.Time{netip.MustParseAddr("2001:db8::1"): exp}},
		},
		"*.example.com": nil,
	}}
	states := map[model.ObjectKey]dnsproxy.PolicyState{key: state, {Source: "static", Name: "static"}: state}
	w := &FQDNStatusWriter{Writer: c, Reader: c, States: func() map[model.ObjectKey]dnsproxy.PolicyState { return states }, Log: slog.Default()}

	get := func() v1.PolicyStatus {
		var p v1.ClusterwideNetworkPolicy
		if err := c.Get(ctx, types.NamespacedName{Namespace: "firewall", Name: "github"}, &p); err != nil {
			t.Fatal(err)
		}
		return p.Status
	}
	w.WriteOnce(ctx)
	st := get()
	sets := st.FQDNState["api.github.com"]
	if len(sets) != 2 || sets[0].Version != "ip" || sets[1].Version != "ip6" || sets[0].SetName != "fqdn-x-0_v4" || sets[0].FQDN != "api.github.com." {
		t.Fatalf("fqdn_state: %+v", st.FQDNState)
	}
	if got := sets[0].IPExpirationTimes["192.0.2.1"]; !got.Time.Equal(exp.Truncate(time.Second)) {
		t.Errorf("expiry %s", got)
	}
	if _, ok := st.FQDNState["*.example.com"]; !ok {
		t.Error("selector without names missing")
	}
	if meta.FindStatusCondition(st.Conditions, ConditionFQDNLearning) != nil {
		t.Error("cap condition without a cap hit")
	}

	// Nothing changed: no write (the status is not written per DNS answer either).
	w.WriteOnce(ctx)
	w.WriteOnce(ctx)
	if patches != 1 {
		t.Errorf("%d patches, want 1", patches)
	}

	state.Message = "DNS proxy: the learned state is at its cap"
	states[key] = state
	w.WriteOnce(ctx)
	if cond := meta.FindStatusCondition(get().Conditions, ConditionFQDNLearning); cond == nil || cond.Message != state.Message || patches != 2 {
		t.Errorf("cap condition %+v after %d patches", cond, patches)
	}
}

func TestFirewallSpecDNS(t *testing.T) {
	port := uint(5353)
	fw := &v2.Firewall{}
	fw.Spec.DNSServerAddress, fw.Spec.DNSPort = "10.0.0.53", &port
	if got := model.ParseFirewall(FirewallSpec(fw)).DNSUpstream.String(); got != "10.0.0.53:5353" {
		t.Errorf("upstream %s", got)
	}
}
