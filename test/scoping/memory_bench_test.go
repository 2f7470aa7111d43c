package scoping

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-fw/palisade/internal/testenv"
)

// BenchmarkUnrelatedSecrets measures the manager's heap (it runs in this process) with no
// Secrets in the cluster and with PALISADE_BENCH_SECRETS (default 10,000) unrelated Secrets of
// 10 KiB each, and for comparison the heap a full Secret informer (the cache before issue 14)
// adds. Run with -benchtime 1x; the figures go to docs/benchmarks.md.
func BenchmarkUnrelatedSecrets(b *testing.B) {
	count := 10000
	if v, err := strconv.Atoi(os.Getenv("PALISADE_BENCH_SECRETS")); err == nil && v > 0 {
		count = v
	}
	for range b.N {
		if err := stack.StartManager(); err != nil { // a fresh manager: its caches only
			b.Fatal(err)
		}
		without := settledHeap()

		start := time.Now()
		createSecrets(b, count)
		created := time.Since(start)
		if err := stack.StartManager(); err != nil {
			b.Fatal(err)
		}
		with := settledHeap()

		full := fullSecretInformerHeap(b) - with
		b.ReportMetric(mib(without), "MiB-heap-0-secrets")
		b.ReportMetric(mib(with), "MiB-heap-with-secrets")
		b.ReportMetric(100*(float64(with)-float64(without))/float64(without), "%-growth")
		b.ReportMetric(mib(full), "MiB-full-informer-adds")
		fmt.Fprintf(os.Stderr, "unrelated secrets: %d x 10 KiB created in %s; manager heap %.1f MiB without, %.1f MiB with (%+.1f %%); a full Secret informer would add %.1f MiB\n",
			count, created.Round(time.Second), mib(without), mib(with), 100*(float64(with)-float64(without))/float64(without), mib(full))
	}
}

func mib(bytes uint64) float64 { return float64(bytes) / (1 << 20) }

// settledHeap returns the live heap once it stopped changing: informers fill in the background.
func settledHeap() uint64 {
	var last uint64
	for i := 0; i < 30; i++ {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if last != 0 && diff(m.HeapAlloc, last) < last/100 {
			return m.HeapAlloc
		}
		last = m.HeapAlloc
		time.Sleep(2 * time.Second)
	}
	return last
}

func diff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

func createSecrets(b *testing.B, count int) {
	cfg := rest.CopyConfig(stack.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "unrelated-secrets-"}}
	if err := c.Create(ctx, ns); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 10<<10)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%05d", i), Namespace: ns.Name}, Data: map[string][]byte{"blob": payload}}
				if err := c.Create(ctx, s); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := range count {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// fullSecretInformerHeap starts a plain cache with a Secret informer next to the manager and
// returns the settled heap, then stops it.
func fullSecretInformerHeap(b *testing.B) uint64 {
	c, err := cache.New(stack.Config, cache.Options{Scheme: testenv.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	cctx, cancel := contextWithCancel()
	defer cancel()
	go func() { _ = c.Start(cctx) }()
	if _, err := c.GetInformer(cctx, &corev1.Secret{}); err != nil {
		b.Fatal(err)
	}
	if !c.WaitForCacheSync(cctx) {
		b.Fatal("the Secret informer did not sync")
	}
	return settledHeap()
}

func contextWithCancel() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }
