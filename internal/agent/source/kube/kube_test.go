package kube

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/model"
)

func ptr[T any](v T) *T { return &v }

func TestServiceInput(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Annotations: map[string]string{sourceRangesAnnotation: "1.2.3.0/24,4.5.6.7/32"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: "185.1.2.3",
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 443, NodePort: 30443}}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "2001:db8::3"}, {Hostname: "x"}}}},
	}
	in, ok := ServiceInput(svc)
	if !ok {
		t.Fatal("LoadBalancer skipped")
	}
	if len(in.Spec.IPs) != 2 || len(in.Spec.SourceRanges) != 2 || in.Spec.Ports[0].NodePort != 30443 {
		t.Errorf("unexpected conversion: %+v", in.Spec)
	}
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	if _, ok := ServiceInput(svc); ok {
		t.Error("ClusterIP service must be skipped")
	}
}

func TestFirewallSpec(t *testing.T) {
	fw := &v2.Firewall{}
	fw.Spec.InternalPrefixes = []string{"10.0.0.0/8"}
	fw.Spec.RateLimits = []v2.RateLimit{{NetworkID: "internet", Rate: 10}}
	fw.Spec.EgressRules = []v2.EgressRuleSNAT{{NetworkID: "internet", IPs: []string{"185.1.2.3"}}}
	fw.Status.FirewallNetworks = []v2.FirewallNetwork{
		{NetworkID: ptr("internet"), NetworkType: ptr("external"), Vrf: ptr[int64](104009), Prefixes: []string{"185.1.2.0/24"}},
		{NetworkID: ptr("node"), NetworkType: ptr("privateprimaryunshared"), Vrf: ptr[int64](3981), Prefixes: []string{"10.1.0.0/22"}},
	}
	got := model.ParseFirewall(FirewallSpec(fw))
	if len(got.Warnings) != 0 {
		t.Fatalf("warnings: %v", got.Warnings)
	}
	if got.ClusterPrefixes[0].String() != "10.1.0.0/22" {
		t.Errorf("cluster prefixes from the private primary network: %v", got.ClusterPrefixes)
	}
	if got.RateLimits[0].Interface != "vrf104009" || got.SNAT[0].Interface != "vlan104009" {
		t.Errorf("interfaces: %+v %+v", got.RateLimits, got.SNAT)
	}
}

func TestStatusWriter(t *testing.T) {
	ctx := context.Background()
	mk := func(name string) *v1.ClusterwideNetworkPolicy {
		return &v1.ClusterwideNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "firewall", Generation: 2}}
	}
	writes := 0
	c := fake.NewClientBuilder().WithScheme(Scheme()).WithStatusSubresource(&v1.ClusterwideNetworkPolicy{}).
		WithObjects(mk("good"), mk("bad"), mk("pending")).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			writes++
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		}}).Build()
	rec := record.NewFakeRecorder(10)
	w := NewStatusWriter(c, c, rec, slog.Default())
	key := func(n string) model.ObjectKey {
		return model.ObjectKey{Source: SourceShoot, Namespace: "firewall", Name: n}
	}
	verdicts := []model.Verdict{
		{Key: key("good"), Kind: "ClusterwideNetworkPolicy", Generation: 2, Accepted: true},
		{Key: key("bad"), Kind: "ClusterwideNetworkPolicy", Generation: 2, Message: "egress[0].ports[0].port: 0 is not between 1 and 65535"},
		{Key: key("gone"), Kind: "ClusterwideNetworkPolicy", Generation: 1, Accepted: true},
	}
	w.Report(ctx, verdicts, true)

	get := func(name string) v1.PolicyStatus {
		var p v1.ClusterwideNetworkPolicy
		if err := c.Get(ctx, types.NamespacedName{Namespace: "firewall", Name: name}, &p); err != nil {
			t.Fatal(err)
		}
		return p.Status
	}
	if st := get("good"); st.State != v1.PolicyDeployed || st.ObservedGeneration != 2 {
		t.Errorf("good: %+v", st)
	}
	if st := get("bad"); st.State != v1.PolicyIgnored || st.Message == "" {
		t.Errorf("bad: %+v", st)
	}
	if st := get("pending"); st.State != "" {
		t.Errorf("pending has no verdict and must stay untouched: %+v", st)
	}
	if len(rec.Events) != 2 {
		t.Errorf("want 2 events, got %d", len(rec.Events))
	}
	if writes != 2 {
		t.Errorf("%d status writes, want 2", writes)
	}
	// The same verdicts again write nothing and emit no event: only changed statuses are
	// written (1,000 policies at the status rate would otherwise take 20 s after every sync).
	w.Report(ctx, verdicts, true)
	if len(rec.Events) != 2 || writes != 2 {
		t.Errorf("repeated report emitted %d events and wrote %d statuses", len(rec.Events), writes)
	}
	// A failed apply never marks a policy deployed.
	c2 := fake.NewClientBuilder().WithScheme(Scheme()).WithStatusSubresource(&v1.ClusterwideNetworkPolicy{}).WithObjects(mk("good")).Build()
	NewStatusWriter(c2, c2, nil, slog.Default()).Report(ctx, verdicts[:1], false)
	var p v1.ClusterwideNetworkPolicy
	_ = c2.Get(ctx, types.NamespacedName{Namespace: "firewall", Name: "good"}, &p)
	if p.Status.State != "" {
		t.Errorf("marked %q although the apply failed", p.Status.State)
	}
}

// The status and event writes run at the configured rate, not client-go's 5 QPS; the
// informers' client keeps the kubeconfig's.
func TestWriteConfigRate(t *testing.T) {
	base := &rest.Config{Host: "https://shoot.example", QPS: 5, Burst: 10}
	w := Shoot{StatusQPS: 50, StatusBurst: 100}.writeConfig(base)
	if w.QPS != 50 || w.Burst != 100 || base.QPS != 5 || base.Burst != 10 || w.Host != base.Host {
		t.Errorf("write config %v/%d, base %v/%d", w.QPS, w.Burst, base.QPS, base.Burst)
	}
	if w := (Shoot{}).writeConfig(base); w.QPS != 5 || w.Burst != 10 {
		t.Errorf("unset rate changed the config: %v/%d", w.QPS, w.Burst)
	}
}

// A refused shoot Service gets one Warning event per reason, IPv4 and IPv6 alike.
func TestServiceEventsOnRefusal(t *testing.T) {
	svc := func(name, ip string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: ip, Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 443}}}}
	}
	objs := []*corev1.Service{svc("out4", "8.8.8.8"), svc("out6", "2606:4700::1111"), svc("ok", "10.1.0.50")}
	c := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(objs[0], objs[1], objs[2]).Build()
	fw := model.ParseFirewall(model.FirewallSpec{ClusterPrefixes: []string{"10.1.0.0/24", "fd01::/64"}})
	var inputs []model.ServiceInput
	for _, o := range objs {
		in, _ := ServiceInput(o)
		inputs = append(inputs, in)
	}
	_, verdicts := model.ComposeServices(fw, inputs)
	rec := record.NewFakeRecorder(10)
	ev := NewServiceEvents(c, rec, slog.Default())
	ev.Report(context.Background(), verdicts, true)
	ev.Report(context.Background(), verdicts, true) // same reasons: no new events
	close(rec.Events)
	var got []string
	for e := range rec.Events {
		got = append(got, e)
	}
	if len(got) != 2 {
		t.Fatalf("events %q", got)
	}
	for _, e := range got {
		if !strings.Contains(e, "Warning "+ReasonRefused) || !strings.Contains(e, "is in no network of the firewall") {
			t.Errorf("event %q", e)
		}
	}
}
