// Package managerbench measures the manager on a fleet: envtest (a real API server) and the
// metal-api simulator over HTTP, with the production defaults of cmd/manager.
//
//	make bench   # or: go test -run '^$' -bench Fleet -benchtime 1x ./test/managerbench/
//
// Environment knobs (defaults in brackets): PALISADE_BENCH_DEPLOYMENTS [200],
// PALISADE_BENCH_NAMESPACES [50], PALISADE_BENCH_REPLICAS [2], PALISADE_BENCH_STEADY [2m]
// (steady-state window), PALISADE_BENCH_CREATING_POLL [5s, the --metal-poll-interval-creating
// default], PALISADE_BENCH_RUNNING_POLL [1m], PALISADE_BENCH_KUBE_QPS [50, burst twice that: the
// cmd/manager defaults], PALISADE_BENCH_LOG (file for the manager's error log),
// PALISADE_BENCH_REQUEST_DETAIL (count API server writes per resource).
package managerbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv"
)

const newImage = "firewall-ubuntu-3.0.20240201"

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// requestCounter counts the manager's API server requests by method.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

type countingTransport struct {
	next http.RoundTripper
	c    *requestCounter
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.c.mu.Lock()
	t.c.counts[req.Method]++
	if os.Getenv("PALISADE_BENCH_REQUEST_DETAIL") != "" && req.Method != http.MethodGet {
		// e.g. "PATCH firewalls/status"
		parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
		what := parts[len(parts)-1]
		if len(parts) >= 2 && (what == "status" || len(parts)%2 == 0) {
			if what == "status" {
				what = parts[len(parts)-3] + "/status"
			} else {
				what = parts[len(parts)-2]
			}
		}
		t.c.counts[req.Method+" "+what]++
	}
	t.c.mu.Unlock()
	return t.next.RoundTrip(req)
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return countingTransport{next: rt, c: c}
}

// take returns the counts since the last take.
func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	return out
}

// memSampler records the peak resident set (VmHWM, reset at start) and the peak Go heap and
// runtime memory of this process.
type memSampler struct {
	mu                     sync.Mutex
	peakHeapInuse, peakSys uint64
	stop                   chan struct{}
	done                   chan struct{}
}

func startMemSampler() *memSampler {
	// Writing 5 to clear_refs resets VmHWM (Linux), so the peak covers only what follows.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			s.mu.Lock()
			s.peakHeapInuse = max(s.peakHeapInuse, ms.HeapInuse)
			s.peakSys = max(s.peakSys, ms.Sys)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *memSampler) finish() (hwm, heap, sys uint64) {
	close(s.stop)
	<-s.done
	return procStatus("VmHWM"), s.peakHeapInuse, s.peakSys
}

// procStatus reads a "kB" field of /proc/self/status in bytes.
func procStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n * 1024
		}
	}
	return 0
}

const mib = 1 << 20

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s)-1)*p+0.5))]
}

type fleet struct {
	b        *testing.B
	ctx      context.Context
	cache    client.Client // the manager's cached client: reading it costs the API server nothing
	direct   client.Client // the harness's own writes, outside the manager's rate limiter
	sim      *metalsim.Simulator
	keys     []client.ObjectKey
	replicas int
}

// waitAll polls the manager's cache until done holds for every deployment and returns the time
// each one was first seen done.
func (f *fleet) waitAll(what string, timeout time.Duration, done func(*v2.FirewallDeployment) bool) map[client.ObjectKey]time.Time {
	seen := map[client.ObjectKey]time.Time{}
	started := time.Now()
	deadline := started.Add(timeout)
	lastProgress := started
	for len(seen) < len(f.keys) {
		if time.Now().After(deadline) {
			f.progress(what, started, len(seen))
			f.b.Fatalf("%s: only %d of %d deployments after %s", what, len(seen), len(f.keys), timeout)
		}
		if time.Since(lastProgress) > 15*time.Second {
			f.progress(what, started, len(seen))
			if len(f.keys)-len(seen) <= 3 {
				f.dumpPending(seen)
			}
			lastProgress = time.Now()
		}
		var list v2.FirewallDeploymentList
		if err := f.cache.List(f.ctx, &list); err != nil {
			f.b.Fatal(err)
		}
		now := time.Now()
		for i := range list.Items {
			d := &list.Items[i]
			k := client.ObjectKeyFromObject(d)
			if _, ok := seen[k]; !ok && done(d) {
				seen[k] = now
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return seen
}

// progress prints where the fleet stands to stderr (streamed when the test binary runs directly).
func (f *fleet) progress(what string, started time.Time, done int) {
	var sets v2.FirewallSetList
	var fws v2.FirewallList
	_ = f.cache.List(f.ctx, &sets)
	_ = f.cache.List(f.ctx, &fws)
	phases := map[v2.FirewallPhase]int{}
	for _, fw := range fws.Items {
		phases[fw.Status.Phase]++
	}
	fmt.Fprintf(os.Stderr, "[bench] %s +%s: %d/%d deployments done, %d sets, %d firewalls %v, %d machines allocated\n",
		what, time.Since(started).Round(time.Second), done, len(f.keys), len(sets.Items), len(fws.Items), phases, f.allocatedMachines())
}

// dumpPending prints the deployments not yet done with their sets, to find out why.
func (f *fleet) dumpPending(seen map[client.ObjectKey]time.Time) {
	for _, k := range f.keys {
		if _, ok := seen[k]; ok {
			continue
		}
		d := &v2.FirewallDeployment{}
		if err := f.cache.Get(f.ctx, k, d); err != nil {
			continue
		}
		st, _ := json.Marshal(d.Status)
		fmt.Fprintf(os.Stderr, "[bench]   pending %s gen %d: %s\n", k, d.Generation, st)
		var sets v2.FirewallSetList
		_ = f.cache.List(f.ctx, &sets, client.InNamespace(k.Namespace))
		for _, s := range sets.Items {
			if ref := metav1.GetControllerOf(&s); ref == nil || ref.UID != d.UID {
				continue
			}
			ss, _ := json.Marshal(s.Status)
			fmt.Fprintf(os.Stderr, "[bench]     set %s rev %s gen %d replicas %d distance %d deleting %v: %s\n", s.Name,
				s.Annotations[v2.RevisionAnnotation], s.Generation, s.Spec.Replicas, s.Spec.Distance, s.DeletionTimestamp != nil, ss)
		}
	}
}

func (f *fleet) allocatedMachines() int {
	n := 0
	for _, m := range f.sim.Machines() {
		if m.Allocation != nil {
			n++
		}
	}
	return n
}

// BenchmarkFleet creates 200 FirewallDeployments x 2 replicas in 50 namespaces, waits until all
// are ready, rolls all of them to a new image and then measures metal-api requests at steady
// state. Run it with -benchtime 1x: one iteration takes minutes.
func BenchmarkFleet(b *testing.B) {
	deployments := envInt("PALISADE_BENCH_DEPLOYMENTS", 200)
	namespaces := envInt("PALISADE_BENCH_NAMESPACES", 50)
	replicas := envInt("PALISADE_BENCH_REPLICAS", 2)
	steady := envDuration("PALISADE_BENCH_STEADY", 2*time.Minute)
	opts := manager.DefaultOptions() // production defaults, as cmd/manager
	opts.Firewall.CreatingPoll = envDuration("PALISADE_BENCH_CREATING_POLL", opts.Firewall.CreatingPoll)
	opts.Firewall.RunningPoll = envDuration("PALISADE_BENCH_RUNNING_POLL", opts.Firewall.RunningPoll)

	for range b.N {
		runFleet(b, deployments, namespaces, replicas, steady, opts)
	}
}

func runFleet(b *testing.B, deployments, namespaces, replicas int, steady time.Duration, opts manager.Options) {
	b.StopTimer()
	if path := os.Getenv("PALISADE_BENCH_LOG"); path == "" {
		logf.SetLogger(logr.Discard())
	} else {
		// Errors only: reconcile errors and what led to them.
		out, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer out.Close()
		logf.SetLogger(zap.New(zap.WriteTo(out), zap.Level(zapcore.ErrorLevel)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	env, restCfg, err := testenv.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()

	cfg := metalsim.DefaultConfig()
	// Fast provisioning: the benchmark measures the manager, not the (simulated) hardware.
	cfg.Provisioning.Installing = metalsim.Duration{Duration: 200 * time.Millisecond}
	cfg.Provisioning.BootingNewKernel = metalsim.Duration{Duration: 100 * time.Millisecond}
	cfg.Provisioning.ReclaimDelay = metalsim.Duration{Duration: 100 * time.Millisecond}
	cfg.Provisioning.ReclaimStep = metalsim.Duration{Duration: 50 * time.Millisecond}
	// Room for 2x the fleet's addresses (old and new machines during the roll): the default
	// internet and underlay /24s run out at 254 firewalls.
	for i := range cfg.Networks {
		switch cfg.Networks[i].ID {
		case metalsim.DefaultExternalNetwork:
			cfg.Networks[i].Prefixes = []string{"185.1.0.0/20"}
		case metalsim.DefaultUnderlayNetwork:
			cfg.Networks[i].Prefixes = []string{"10.1.0.0/20"}
		case metalsim.DefaultPrivateNetwork:
			cfg.Networks[i].Prefixes = append(cfg.Networks[i].Prefixes, "10.0.64.0/18")
		}
	}
	sim := metalsim.New(cfg)
	if _, err := sim.AddPoolMachines(metalsim.DefaultPartition, metalsim.DefaultSize, 2*deployments*replicas+20); err != nil {
		b.Fatal(err)
	}
	url, stopSim, err := sim.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer stopSim()
	metalClient, err := metal.New(metal.Config{URL: url, HMACKey: "metal-admin-key", HMACAuthType: metal.AuthTypeAdmin, Timeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}

	// The manager gets cmd/manager's client-side limits (--kube-api-qps 50, --kube-api-burst 100).
	mgrCfg := rest.CopyConfig(restCfg)
	mgrCfg.QPS, mgrCfg.Burst = 50, 100
	if qps := envInt("PALISADE_BENCH_KUBE_QPS", 0); qps > 0 {
		mgrCfg.QPS, mgrCfg.Burst = float32(qps), qps*2
	}
	kube := &requestCounter{counts: map[string]int{}}
	mgrCfg.Wrap(kube.wrap)
	harnessCfg := rest.CopyConfig(restCfg)
	harnessCfg.QPS, harnessCfg.Burst = 1000, 2000
	direct, err := client.New(harnessCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		b.Fatal(err)
	}

	runtime.GC()
	mem := startMemSampler()
	mgr, err := ctrl.NewManager(mgrCfg, ctrl.Options{
		Scheme:                 testenv.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := manager.Setup(mgr, metalClient, opts); err != nil {
		b.Fatal(err)
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	defer func() { cancel(); <-mgrDone }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		b.Fatal("cache did not sync")
	}

	f := &fleet{b: b, ctx: ctx, cache: mgr.GetClient(), direct: direct, sim: sim, replicas: replicas}
	nsNames := make([]string, namespaces)
	for i := range nsNames {
		nsNames[i] = fmt.Sprintf("bench-%02d", i)
		if err := direct.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsNames[i]}}); err != nil {
			b.Fatal(err)
		}
	}

	// 1. Create the fleet.
	b.StartTimer()
	start := time.Now()
	for i := range deployments {
		ns := nsNames[i%namespaces]
		d := deployment(ns, fmt.Sprintf("fd-%02d-%d", i%namespaces, i/namespaces), replicas)
		if err := direct.Create(ctx, d); err != nil {
			b.Fatal(err)
		}
		f.keys = append(f.keys, client.ObjectKeyFromObject(d))
	}
	created := time.Now()
	f.waitAll("create", 30*time.Minute, func(d *v2.FirewallDeployment) bool {
		return d.Status.ObservedGeneration == d.Generation && d.Status.ReadyReplicas == replicas &&
			meta.IsStatusConditionTrue(d.Status.Conditions, v2.ConditionAvailable)
	})
	allReady := time.Now()
	var lastPhonedHome time.Time
	for _, e := range sim.Timeline() {
		if e.Kind == metalsim.TimelinePhonedHome && e.Time.After(lastPhonedHome) {
			lastPhonedHome = e.Time
		}
	}
	createRequests := sim.RequestCounts()
	createKube := kube.take()

	// 2. Roll every deployment to a new image, once the safety backoff since the first sets has
	// passed (it would otherwise hold the new sets back).
	time.Sleep(max(0, opts.SafetyBackoff-time.Since(created)))
	sim.ResetRequests()
	changed := map[client.ObjectKey]time.Time{}
	rollStart := time.Now()
	for _, k := range f.keys {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			d := &v2.FirewallDeployment{}
			if err := direct.Get(ctx, k, d); err != nil {
				return err
			}
			d.Spec.Template.Spec.Image = newImage
			return direct.Update(ctx, d)
		})
		if err != nil {
			b.Fatal(err)
		}
		changed[k] = time.Now()
	}
	doneAt := f.waitAll("roll", 30*time.Minute, func(d *v2.FirewallDeployment) bool {
		p := meta.FindStatusCondition(d.Status.Conditions, v2.ConditionProgressing)
		return d.Status.ObservedGeneration == d.Generation && d.Status.ObservedRevision == 1 &&
			d.Status.ReadyReplicas == replicas && d.Status.AvailableReplicas == replicas &&
			p != nil && p.Reason == v2.ReasonNewFirewallSetAvailable && p.ObservedGeneration == d.Generation
	})
	rollEnd := time.Now()
	b.StopTimer()
	rollRequests := sim.RequestCounts()
	rollKube := kube.take()

	// Per deployment: time from the change until it converged, minus the provisioning of its new
	// machines (first allocation to last phone-home) = what the manager adds.
	type span struct{ first, last, oldFreed time.Time }
	prov := map[string]*span{}
	prefix := func(host string) string { // "fd-07-3-abcde" -> "fd-07-3"
		if i := strings.LastIndex(host, "-"); i > 0 {
			return host[:i]
		}
		return host
	}
	for _, e := range sim.Timeline() {
		if e.Time.Before(rollStart) {
			continue
		}
		s := prov[prefix(e.Hostname)]
		if s == nil {
			s = &span{}
			prov[prefix(e.Hostname)] = s
		}
		if e.Kind == metalsim.TimelineFreed && e.Time.After(s.oldFreed) {
			s.oldFreed = e.Time
		}
		if e.Kind == metalsim.TimelineAllocated && (s.first.IsZero() || e.Time.Before(s.first)) {
			s.first = e.Time
		}
		if e.Kind == metalsim.TimelinePhonedHome && e.Time.After(s.last) {
			s.last = e.Time
		}
	}
	var overhead, total, toAlloc, afterPhone, toFreed []time.Duration
	for _, k := range f.keys {
		s := prov[k.Name]
		if s == nil || s.first.IsZero() || s.last.IsZero() {
			b.Fatalf("no new machines seen for %s", k)
		}
		t := doneAt[k].Sub(changed[k])
		total = append(total, t)
		overhead = append(overhead, t-s.last.Sub(s.first))
		toAlloc = append(toAlloc, s.first.Sub(changed[k]))
		afterPhone = append(afterPhone, doneAt[k].Sub(s.last))
		toFreed = append(toFreed, s.oldFreed.Sub(s.last))
	}
	leaked := f.allocatedMachines() - deployments*replicas

	// 3. Steady state: metal-api requests over a window with nothing changing.
	time.Sleep(opts.Firewall.RunningPoll) // let requeues from the roll settle
	sim.ResetRequests()
	time.Sleep(steady)
	steadyCounts := sim.RequestCounts()
	steadyKube := kube.take()
	steadyTotal := 0
	for _, n := range steadyCounts {
		steadyTotal += n
	}
	perMinute := float64(steadyTotal) / steady.Minutes()
	hwm, heap, sys := mem.finish()

	b.ReportMetric(allReady.Sub(start).Seconds(), "s-create-to-ready")
	b.ReportMetric(allReady.Sub(lastPhonedHome).Seconds(), "s-lastphonehome-to-ready")
	b.ReportMetric(rollEnd.Sub(rollStart).Seconds(), "s-fleet-roll")
	b.ReportMetric(percentile(overhead, 0.5).Seconds(), "s-roll-overhead-p50")
	b.ReportMetric(percentile(overhead, 0.95).Seconds(), "s-roll-overhead-p95")
	b.ReportMetric(percentile(overhead, 1).Seconds(), "s-roll-overhead-max")
	b.ReportMetric(float64(hwm)/mib, "MiB-peak-rss")
	b.ReportMetric(float64(heap)/mib, "MiB-peak-heap-inuse")
	b.ReportMetric(perMinute, "metal-req/min-steady")
	b.Logf("fleet: %d deployments x %d replicas in %d namespaces; creating poll %s, running poll %s; GOMAXPROCS %d, load %s",
		deployments, replicas, namespaces, opts.Firewall.CreatingPoll, opts.Firewall.RunningPoll, runtime.GOMAXPROCS(0), loadavg())
	b.Logf("create: objects written in %s, all ready %s after the first create, %s after the last phone-home",
		created.Sub(start).Round(time.Millisecond), allReady.Sub(start).Round(time.Millisecond), allReady.Sub(lastPhonedHome).Round(time.Millisecond))
	b.Logf("create: metal-api requests %v; API server requests by the manager %v", createRequests, createKube)
	b.Logf("roll: all %d converged after %s; per deployment: total p50 %s p95 %s max %s; overhead beyond provisioning p50 %s p95 %s max %s",
		deployments, rollEnd.Sub(rollStart).Round(time.Millisecond),
		percentile(total, 0.5).Round(time.Millisecond), percentile(total, 0.95).Round(time.Millisecond), percentile(total, 1).Round(time.Millisecond),
		percentile(overhead, 0.5).Round(time.Millisecond), percentile(overhead, 0.95).Round(time.Millisecond), percentile(overhead, 1).Round(time.Millisecond))
	b.Logf("roll: change -> first new allocation p50 %s p95 %s; last new phone-home -> last old machine freed p50 %s p95 %s; -> converged p50 %s p95 %s; fleet roll per deployment %s",
		percentile(toAlloc, 0.5).Round(time.Millisecond), percentile(toAlloc, 0.95).Round(time.Millisecond),
		percentile(toFreed, 0.5).Round(time.Millisecond), percentile(toFreed, 0.95).Round(time.Millisecond),
		percentile(afterPhone, 0.5).Round(time.Millisecond), percentile(afterPhone, 0.95).Round(time.Millisecond),
		(rollEnd.Sub(rollStart) / time.Duration(deployments)).Round(time.Millisecond))
	b.Logf("roll: metal-api requests %v; API server requests by the manager %v; machines allocated beyond %d: %d", rollRequests, rollKube, deployments*replicas, leaked)
	b.Logf("steady: %d metal-api requests in %s = %.1f/min %v; API server requests by the manager %v", steadyTotal, steady, perMinute, steadyCounts, steadyKube)
	b.Logf("memory: peak RSS (VmHWM, whole test process: manager, simulator, harness) %.0f MiB; Go heap in use peak %.0f MiB; Go runtime Sys peak %.0f MiB",
		float64(hwm)/mib, float64(heap)/mib, float64(sys)/mib)
	if leaked != 0 {
		b.Errorf("%d machines leaked or missing after the roll", leaked)
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func deployment(namespace, name string, replicas int) *v2.FirewallDeployment {
	return &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
			Annotations: map[string]string{v2.NoControllerConnectionAnnotation: "true"}},
		Spec: v2.FirewallDeploymentSpec{
			Strategy: v2.StrategyRollingUpdate,
			Replicas: replicas,
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: v2.FirewallSpec{
					Size:      metalsim.DefaultSize,
					Image:     metalsim.DefaultImage,
					Partition: metalsim.DefaultPartition,
					Project:   metalsim.DefaultProject,
					Networks:  []string{metalsim.DefaultExternalNetwork, metalsim.DefaultPrivateNetwork},
					Userdata:  `{"ignition":{"version":"3.4.0"}}`,
				},
			},
		},
	}
}
