package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	gnftables "github.com/google/nftables"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/palisade-fw/palisade/api/v1"
	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/testenv"
)

// kernelWatch receives the kernel's element notifications (netlink multicast, sent when a
// transaction commits) and records when an element of a /24 first arrived: what it records
// is committed, however the agent talks to the kernel.
type kernelWatch struct {
	mu   sync.Mutex
	seen map[[3]byte]time.Time
	wake chan struct{}
}

func watchKernel(b *testing.B, netns *os.File) *kernelWatch {
	conn, err := gnftables.New(gnftables.WithNetNSFd(int(netns.Fd())))
	if err != nil {
		b.Fatal(err)
	}
	mon := gnftables.NewMonitor(gnftables.WithMonitorAction(gnftables.MonitorActionNew),
		gnftables.WithMonitorObject(gnftables.MonitorObjectElements), gnftables.WithMonitorEventBuffer(4096))
	events, err := conn.AddMonitor(mon)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mon.Close() })
	w := &kernelWatch{seen: map[[3]byte]time.Time{}, wake: make(chan struct{}, 1)}
	go func() {
		for ev := range events {
			now := time.Now()
			elems, _ := ev.Data.([]gnftables.SetElement)
			w.mu.Lock()
			for _, e := range elems {
				if len(e.Key) >= 4 && e.Key[0] == 30 {
					k := [3]byte(e.Key[:3])
					if _, ok := w.seen[k]; !ok {
						w.seen[k] = now
					}
				}
			}
			w.mu.Unlock()
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

func (w *kernelWatch) at(k [3]byte) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.seen[k]
	return t, ok
}

// BenchmarkCWNPToKernel: the end-to-end figure. A running agent with the shoot source
// watches 1,000 CWNPs (10,000 CIDRs) and 2,000 LoadBalancer Services in a real API server
// (envtest); a CWNP's CIDR is changed 100 times, one after the other, and the time from
// the write to the API server until the kernel announces the committed element (netlink
// notification) is measured. Run with -benchtime 1x; the setup takes a minute.
func BenchmarkCWNPToKernel(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root for a network namespace")
	}
	env, err := testenv.New()
	if err != nil {
		b.Fatal(err)
	}
	// 2,000 Services need more cluster IPs than envtest's default /24.
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.128.0.0/16")
	restCfg, err := env.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(restCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Not b.TempDir: the agent may still be writing its rule file when the benchmark ends.
	dir, err := os.MkdirTemp("", "palisade-latency-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		b.Fatal(err)
	}
	for _, ns := range []string{"firewall", "shop"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
	}
	cidrs := func(i, gen int) []v1.IPBlock {
		blocks := make([]v1.IPBlock, 10)
		for j := range blocks {
			n := i*10 + j
			blocks[j] = v1.IPBlock{CIDR: fmt.Sprintf("%d.%d.%d.0/24", 20+n/65536, (n/256)%256, n%256)}
		}
		if gen > 0 {
			blocks[0].CIDR = fmt.Sprintf("30.%d.%d.0/24", gen/256, gen%256)
		}
		return blocks
	}
	tcp := corev1.ProtocolTCP
	port := func(p int32) *int32 { return &p }
	policy := func(i int) *v1.ClusterwideNetworkPolicy {
		return &v1.ClusterwideNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "firewall", Name: fmt.Sprintf("policy-%04d", i)},
			Spec: v1.PolicySpec{Egress: []v1.EgressRule{{To: cidrs(i, 0), Ports: []v1.NetworkPolicyPort{{Protocol: &tcp, Port: port(int32(1000 + i%50))}, {Protocol: &tcp, Port: port(443)}}}}}}
	}
	var workers sync.WaitGroup
	errs := make(chan error, 3000)
	for w := range 8 { // the API server, not the client, is the limit
		workers.Go(func() {
			for i := w; i < 1000; i += 8 {
				if err := c.Create(ctx, policy(i)); err != nil {
					errs <- err
				}
			}
			for i := w; i < 2000; i += 8 {
				svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("svc-%04d", i)},
					Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: fmt.Sprintf("10.2.%d.%d", i/256, i%256),
						LoadBalancerSourceRanges: []string{fmt.Sprintf("198.%d.%d.0/24", 18+i%2, i%256)},
						Ports:                    []corev1.ServicePort{{Protocol: tcp, Port: int32(443 + i%3), TargetPort: intstr.FromInt(443)}}}}
				if err := c.Create(ctx, svc); err != nil {
					errs <- err
				}
			}
		})
	}
	workers.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	nsName := make([]byte, 3)
	_, _ = rand.Read(nsName)
	netnsName := "pallat" + hex.EncodeToString(nsName)
	if out, err := exec.Command("ip", "netns", "add", netnsName).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add: %v %s", err, out)
	}
	b.Cleanup(func() { _ = exec.Command("ip", "netns", "del", netnsName).Run() })
	nl, err := nft.NewNetlink("firewall", "/var/run/netns/"+netnsName)
	if err != nil {
		b.Fatal(err)
	}
	nsFile, err := os.Open("/var/run/netns/" + netnsName)
	if err != nil {
		b.Fatal(err)
	}
	defer nsFile.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
name: fw-1
sources:
  shoot: {kubeconfig: %[1]s}
  static:
    firewall:
      clusterPrefixes: [10.1.0.0/16]
      firewallNetworks:
      - {networkID: dmz, networkType: privatesecondaryshared, vrf: 2, prefixes: [10.2.0.0/16]}
controllers:
  firewall: {source: static}
  cwnp: {source: shoot}
  service: {source: shoot}
nftables: {ruleFile: %[2]s/rules.v4}
`, kubeconfig, dir)))
	if err != nil {
		b.Fatal(err)
	}
	a, err := NewWith(cfg, nil, nl)
	if err != nil {
		b.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	b.Cleanup(func() { stop(); <-done })
	// The first sync holds everything.
	deadline := time.After(5 * time.Minute)
	for {
		inv, err := nl.Inventory(ctx)
		if err == nil && len(inv.Counters) >= 3000 {
			break
		}
		select {
		case <-time.After(time.Second):
		case <-deadline:
			b.Fatalf("the agent did not apply the initial ruleset: %+v %v", len(inv.Counters), err)
		}
	}

	watch := watchKernel(b, nsFile)
	var latencies []time.Duration
	b.ResetTimer()
	for gen := 1; gen <= 100; gen++ {
		var written time.Time
		// The agent writes the policy's status meanwhile: retry on conflicts.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var p v1.ClusterwideNetworkPolicy
			if err := c.Get(ctx, client.ObjectKey{Namespace: "firewall", Name: "policy-0007"}, &p); err != nil {
				return err
			}
			p.Spec.Egress[0].To = cidrs(7, gen)
			written = time.Now()
			return c.Update(ctx, &p)
		})
		if err != nil {
			b.Fatal(err)
		}
		key := [3]byte{30, byte(gen / 256), byte(gen % 256)}
		timeout := time.After(time.Minute)
		var at time.Time
		for ok := false; !ok; {
			if at, ok = watch.at(key); ok {
				break
			}
			select {
			case <-watch.wake:
			case <-time.After(20 * time.Millisecond):
			case <-timeout:
				b.Fatalf("change %d never reached the kernel", gen)
			}
		}
		latencies = append(latencies, at.Sub(written))
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(q float64) float64 { return latencies[int(q*float64(len(latencies)-1))].Seconds() * 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(latencies[len(latencies)-1].Seconds()*1000, "max-ms")
}
