package firewall

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/workload"
)

func firewallWithIP(name, networkType string, ips ...string) v2.Firewall {
	return v2.Firewall{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shoot--a"},
		Spec: v2.FirewallSpec{Size: "s", Image: "i", Partition: "p", Project: "00000000-0000-0000-0000-000000000001",
			Networks: []string{"internet"}},
		Status: v2.FirewallStatus{
			MachineStatus:    &v2.MachineStatus{MachineID: name, Liveliness: "Alive", AllocationTimestamp: metav1.Now()},
			FirewallNetworks: []v2.FirewallNetwork{{NetworkType: &networkType, IPs: ips}},
		},
	}
}

func TestExporterAddresses(t *testing.T) {
	deleting := firewallWithIP("c", "privateprimaryunshared", "10.3.164.9")
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	noMachine := firewallWithIP("d", "privateprimaryunshared", "10.3.164.8")
	noMachine.Status.MachineStatus = nil
	got := exporterAddresses([]v2.Firewall{
		firewallWithIP("b", "privateprimaryunshared", "10.3.164.2"),
		firewallWithIP("a", "privateprimaryshared", "10.3.164.1", "10.3.164.2"),
		firewallWithIP("e", "external", "185.1.2.3"),
		deleting, noMachine,
	})
	if want := []string{"10.3.164.1", "10.3.164.2"}; !slices.Equal(got, want) {
		t.Errorf("addresses %v, want %v", got, want)
	}
}

type oneWorkload struct{ wc *workload.Cluster }

func (o oneWorkload) For(context.Context, *v2.Firewall) (*workload.Cluster, error) { return o.wc, nil }

// Against a real API server: the Services and Endpoints seed 003 shows appear in the
// firewall namespace, point at every running firewall, and follow a firewall that goes.
func TestExporterServicesAndEndpoints(t *testing.T) {
	ctx, cfg, c := startWithNamespaces(t, "shoot--a", v2.FirewallShootNamespace)
	fws := []v2.Firewall{firewallWithIP("fw-a", "privateprimaryunshared", "10.3.164.1"), firewallWithIP("fw-b", "privateprimaryunshared", "10.3.164.2")}
	for i := range fws {
		createWithStatus(ctx, t, c, &fws[i])
	}
	// Applies are counted: the same content is not sent twice.
	watching, err := client.NewWithWatch(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	applies := 0
	counting := interceptor.NewClient(watching, interceptor.Funcs{Apply: func(ctx context.Context, cl client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
		applies++
		return cl.Apply(ctx, obj, opts...)
	}})
	r := &Reconciler{Client: c, Workload: oneWorkload{&workload.Cluster{Client: counting, Namespace: v2.FirewallShootNamespace}}}
	check := func(wantIPs ...string) {
		t.Helper()
		for name, port := range map[string]int32{NftablesExporterService: 9630, NodeExporterService: 9100} {
			var svc corev1.Service
			if err := c.Get(ctx, client.ObjectKey{Namespace: v2.FirewallShootNamespace, Name: name}, &svc); err != nil {
				t.Fatal(err)
			}
			if svc.Spec.ClusterIP != corev1.ClusterIPNone || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != port {
				t.Errorf("service %s: %+v", name, svc.Spec)
			}
			var ep corev1.Endpoints //nolint:staticcheck // seed 003's `kubectl get ep` shows Endpoints
			if err := c.Get(ctx, client.ObjectKey{Namespace: v2.FirewallShootNamespace, Name: name}, &ep); err != nil {
				t.Fatal(err)
			}
			var ips []string
			for _, s := range ep.Subsets {
				for _, a := range s.Addresses {
					ips = append(ips, a.IP)
				}
				if len(s.Ports) != 1 || s.Ports[0].Port != port {
					t.Errorf("endpoints %s ports %+v", name, s.Ports)
				}
			}
			if !slices.Equal(ips, wantIPs) {
				t.Errorf("endpoints %s: %v, want %v", name, ips, wantIPs)
			}
		}
	}
	for i := range fws {
		if err := r.reconcileExporters(ctx, &fws[i]); err != nil {
			t.Fatal(err)
		}
	}
	check("10.3.164.1", "10.3.164.2")
	if applies != 4 {
		t.Errorf("two firewalls with the same exporter content sent %d applies, want 4 (two Services, two Endpoints, once)", applies)
	}
	applies = 0
	if err := c.Delete(ctx, &fws[1]); err != nil {
		t.Fatal(err)
	}
	if err := r.reconcileExporters(ctx, &fws[0]); err != nil {
		t.Fatal(err)
	}
	check("10.3.164.1")
	if applies != 2 {
		t.Errorf("a firewall gone sent %d applies, want 2 (the Endpoints; the Services did not change)", applies)
	}
}

// Single-cluster mode: the firewalls of every namespace report to the manager's own cluster,
// so its one set of exporter Endpoints lists them all, whichever namespace reconciles last;
// a firewall with its own workload kubeconfig is not among them.
func TestExporterEndpointsInSingleClusterModeListEveryNamespace(t *testing.T) {
	ctx, _, c := startWithNamespaces(t, "shoot--a", "shoot--b", v2.FirewallShootNamespace)
	inA := firewallWithIP("fw-a", "privateprimaryunshared", "10.3.164.1")
	inB := firewallWithIP("fw-b", "privateprimaryunshared", "10.4.0.1")
	inB.Namespace = "shoot--b"
	elsewhere := firewallWithIP("fw-c", "privateprimaryunshared", "10.5.0.1")
	elsewhere.Namespace = "shoot--b"
	elsewhere.Annotations = map[string]string{v2.WorkloadKubeconfigAnnotation: "other-cluster"}
	for _, fw := range []*v2.Firewall{&inA, &inB, &elsewhere} {
		createWithStatus(ctx, t, c, fw)
	}
	r := &Reconciler{Client: c, Workload: oneWorkload{&workload.Cluster{Client: c, Namespace: v2.FirewallShootNamespace, Local: true}}}
	for _, fw := range []*v2.Firewall{&inA, &inB} {
		if err := r.reconcileExporters(ctx, fw); err != nil {
			t.Fatal(err)
		}
	}
	var ep corev1.Endpoints //nolint:staticcheck // seed 003's `kubectl get ep` shows Endpoints
	if err := c.Get(ctx, client.ObjectKey{Namespace: v2.FirewallShootNamespace, Name: NftablesExporterService}, &ep); err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, s := range ep.Subsets {
		for _, a := range s.Addresses {
			ips = append(ips, a.IP)
		}
	}
	if want := []string{"10.3.164.1", "10.4.0.1"}; !slices.Equal(ips, want) {
		t.Errorf("endpoints %v, want %v (both namespaces' firewalls, not the one with its own cluster)", ips, want)
	}
}

// startWithNamespaces starts an API server holding namespaces; it stops with the test.
func startWithNamespaces(t *testing.T, namespaces ...string) (context.Context, *rest.Config, client.Client) {
	t.Helper()
	env, cfg, err := testenv.Start()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	for _, ns := range namespaces {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	return ctx, cfg, c
}

// createWithStatus creates fw and then writes the status it was given (create drops it).
func createWithStatus(ctx context.Context, t *testing.T, c client.Client, fw *v2.Firewall) {
	t.Helper()
	status := fw.Status
	if err := c.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	fw.Status = status
	if err := c.Status().Update(ctx, fw); err != nil {
		t.Fatal(err)
	}
}
