// Package managerbench measures the manager on a fleet: envtest (a real kube-apiserver and etcd),
// the metal-api simulator over HTTP, and cmd/manager as a separate process with its production
// defaults, so that its own RSS and CPU are read from /proc/<pid> and its API requests from its
// metrics endpoint.
//
//	make bench-fleet BENCH_DEPLOYMENTS=1,10,50 BENCH_BASELINE=8785a68
//	go test -run '^$' -bench '^BenchmarkFleet$' -benchtime 1x ./test/managerbench/
//
// Environment knobs (defaults in brackets; make bench-fleet sets them from BENCH_*):
// PALISADE_BENCH_DEPLOYMENTS [10; a comma-separated list runs each size], PALISADE_BENCH_NAMESPACES
// [deployments, at most 50], PALISADE_BENCH_REPLICAS [2], PALISADE_BENCH_PROVISIONING [3s,
// allocation to phone-home in the simulator], PALISADE_BENCH_STEADY [2m, steady-state window],
// PALISADE_BENCH_MANAGERS ["label=binary,..."; default: cmd/manager built from this tree],
// PALISADE_BENCH_MANAGER_FLAGS (extra flags for every manager), PALISADE_BENCH_OUT (append the
// markdown tables to this file), PALISADE_BENCH_LOGDIR (keep the managers' logs there).
package managerbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv"
)

const (
	newImage = "firewall-ubuntu-3.0.20240201"
	// safetyBackoff is cmd/manager's --safety-backoff default: a roll earlier than this after
	// the first sets would be held back by it.
	safetyBackoff = 10 * time.Second
	mib           = 1 << 20
)

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

func envSizes(name string, def int) []int {
	var out []int
	for _, f := range strings.Split(os.Getenv(name), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = []int{def}
	}
	return out
}

type managerBinary struct{ label, path string }

// managerBinaries returns the managers to measure: PALISADE_BENCH_MANAGERS, else cmd/manager built
// from this tree.
func managerBinaries(b *testing.B) []managerBinary {
	var out []managerBinary
	for _, f := range strings.Split(os.Getenv("PALISADE_BENCH_MANAGERS"), ",") {
		if label, path, ok := strings.Cut(strings.TrimSpace(f), "="); ok {
			out = append(out, managerBinary{label, path})
		}
	}
	if len(out) > 0 {
		return out
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "manager")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/manager")
	cmd.Dir, cmd.Stderr = root, os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("building cmd/manager: %v", err)
	}
	return []managerBinary{{"this tree", bin}}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s)-1)*p+0.5))]
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// process reads what /proc says about the manager.
type process struct{ pid int }

// cpu returns user+system CPU time so far.
func (p process) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// status reads a "kB" field of /proc/<pid>/status in bytes.
func (p process) status(field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
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

// apiRequests scrapes the manager's client-go request counter (rest_client_requests_total) by
// method.
func apiRequests(metricsURL string) map[string]int {
	out := map[string]int{}
	resp, err := http.Get(metricsURL)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		_, labels, _ := strings.Cut(line, "{")
		labels, value, _ := strings.Cut(labels, "} ")
		method := ""
		for _, l := range strings.Split(labels, ",") {
			if v, ok := strings.CutPrefix(l, `method="`); ok {
				method = strings.TrimSuffix(v, `"`)
			}
		}
		n, _ := strconv.ParseFloat(strings.TrimSpace(value), 64)
		out[method] += int(n)
	}
	return out
}

// serverRequests reads the API server's own request counter (apiserver_request_total) by verb,
// resource and subresource: where the manager's requests go (the harness's few writes and its
// watches are included).
func serverRequests(ctx context.Context, rc rest.Interface) map[string]int {
	out := map[string]int{}
	raw, err := rc.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		_, labels, _ := strings.Cut(line, "{")
		labels, value, _ := strings.Cut(labels, "} ")
		l := map[string]string{}
		for _, kv := range strings.Split(labels, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				l[k] = strings.Trim(v, `"`)
			}
		}
		if l["verb"] == "WATCH" || l["verb"] == "LIST" || l["resource"] == "" {
			continue
		}
		key := l["verb"] + " " + l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		n, _ := strconv.ParseFloat(strings.TrimSpace(value), 64)
		out[key] += int(n)
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func diff(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// counters is a snapshot of everything counted, taken at phase boundaries.
type counters struct {
	at    time.Time
	metal map[string]int
	api   map[string]int
	// server counts requests at the API server by verb and resource (all clients).
	server map[string]int
	cpu    time.Duration
	load   string
}

// observer records when the harness first saw each step of the roll, from its own informers.
type observer struct {
	mu         sync.Mutex
	setSeen    map[string]time.Time // namespace/set
	distZero   map[string]time.Time // namespace/set: first seen at distance 0
	readySeen  map[string]time.Time // namespace/firewall: first seen with Ready true
	doneAt     map[client.ObjectKey]time.Time
	done       func(*v2.FirewallDeployment) bool
	peakRSS    uint64
	stopSample chan struct{}
}

func (o *observer) onSet(obj any) {
	s, ok := obj.(*v2.FirewallSet)
	if !ok {
		return
	}
	now := time.Now()
	k := s.Namespace + "/" + s.Name
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.setSeen[k]; !ok {
		o.setSeen[k] = now
	}
	if _, ok := o.distZero[k]; !ok && s.Spec.Distance == v2.FirewallShortestDistance {
		o.distZero[k] = now
	}
}

func (o *observer) onFirewall(obj any) {
	fw, ok := obj.(*v2.Firewall)
	if !ok || !meta.IsStatusConditionTrue(fw.Status.Conditions, v2.ConditionReady) {
		return
	}
	now := time.Now()
	k := fw.Namespace + "/" + fw.Name
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.readySeen[k]; !ok {
		o.readySeen[k] = now
	}
}

func (o *observer) onDeployment(obj any) {
	d, ok := obj.(*v2.FirewallDeployment)
	if !ok {
		return
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	k := client.ObjectKeyFromObject(d)
	if _, seen := o.doneAt[k]; !seen && o.done != nil && o.done(d) {
		o.doneAt[k] = now
	}
}

// expect starts a phase: done decides when a deployment has finished it.
func (o *observer) expect(done func(*v2.FirewallDeployment) bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done, o.doneAt = done, map[client.ObjectKey]time.Time{}
}

func (o *observer) finished() map[client.ObjectKey]time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[client.ObjectKey]time.Time, len(o.doneAt))
	for k, v := range o.doneAt {
		out[k] = v
	}
	return out
}

type fleet struct {
	b        *testing.B
	ctx      context.Context
	cache    client.Client // the harness's informers: reading costs the API server nothing
	direct   client.Client
	sim      *metalsim.Simulator
	obs      *observer
	keys     []client.ObjectKey
	replicas int
}

// wait returns once every deployment finished the phase the observer expects, re-checking the
// cache (an informer event may have come before expect).
func (f *fleet) wait(what string, timeout time.Duration) {
	started := time.Now()
	lastProgress := started
	for {
		var list v2.FirewallDeploymentList
		if err := f.cache.List(f.ctx, &list); err != nil {
			f.b.Fatal(err)
		}
		for i := range list.Items {
			f.obs.onDeployment(&list.Items[i])
		}
		done := len(f.obs.finished())
		if done == len(f.keys) {
			return
		}
		if time.Since(started) > timeout {
			f.progress(what, started, done)
			f.dumpPending()
			f.b.Fatalf("%s: only %d of %d deployments after %s", what, done, len(f.keys), timeout)
		}
		if time.Since(lastProgress) > 15*time.Second {
			f.progress(what, started, done)
			if len(f.keys)-done <= 3 {
				f.dumpPending()
			}
			lastProgress = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (f *fleet) progress(what string, started time.Time, done int) {
	var sets v2.FirewallSetList
	var fws v2.FirewallList
	_ = f.cache.List(f.ctx, &sets)
	_ = f.cache.List(f.ctx, &fws)
	phases := map[v2.FirewallPhase]int{}
	for _, fw := range fws.Items {
		phases[fw.Status.Phase]++
	}
	fmt.Fprintf(os.Stderr, "[bench] %s +%s: %d/%d deployments done, %d sets, %d firewalls %v, %d machines allocated, load %s\n",
		what, time.Since(started).Round(time.Second), done, len(f.keys), len(sets.Items), len(fws.Items), phases, f.allocatedMachines(), loadavg())
}

// dumpPending prints the deployments not done yet with their sets, to find out why.
func (f *fleet) dumpPending() {
	done := f.obs.finished()
	for _, k := range f.keys {
		if _, ok := done[k]; ok {
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

// result is one run: one manager binary, one fleet size.
type result struct {
	manager                          string
	deployments, namespaces, replica int
	provisioning, steady             time.Duration
	createToReady, createAfterPhone  time.Duration
	rollWall                         time.Duration
	phases                           []phase // per deployment, from its change
	total                            []time.Duration
	create, roll, steadyC            [2]counters
	peakRSS, steadyRSS               uint64
	leaked                           int
}

type phase struct {
	name string
	d    []time.Duration
}

// BenchmarkFleet creates the fleet, waits until all deployments are Available, rolls all of them
// to a new image at once, waits until every one converged, then measures a steady-state window.
// Each size in PALISADE_BENCH_DEPLOYMENTS runs against each manager binary, on a fresh API server
// and simulator. Run it with -benchtime 1x: one run takes minutes.
func BenchmarkFleet(b *testing.B) {
	sizes := envSizes("PALISADE_BENCH_DEPLOYMENTS", 10)
	replicas := envInt("PALISADE_BENCH_REPLICAS", 2)
	provisioning := envDuration("PALISADE_BENCH_PROVISIONING", 3*time.Second)
	steady := envDuration("PALISADE_BENCH_STEADY", 2*time.Minute)
	managers := managerBinaries(b)
	var results []result
	for range b.N {
		for _, n := range sizes {
			namespaces := min(envInt("PALISADE_BENCH_NAMESPACES", min(n, 50)), n)
			for _, m := range managers {
				r := runFleet(b, m, n, namespaces, replicas, provisioning, steady)
				results = append(results, r)
				fmt.Fprintln(os.Stderr, "[bench] done:", r.manager, r.deployments, "deployments")
				fmt.Fprintln(os.Stderr, markdown([]result{r})) // in case a later run does not finish
			}
		}
	}
	report := markdown(results)
	fmt.Println(report)
	if out := os.Getenv("PALISADE_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintln(f, report)
	}
	for _, r := range results {
		if r.leaked != 0 {
			b.Errorf("%s, %d deployments: %d machines leaked or missing after the roll", r.manager, r.deployments, r.leaked)
		}
	}
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeKubeconfig(cfg *rest.Config, path string) error {
	host := cfg.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*kc, path)
}

func newSimulator(b *testing.B, machines int, provisioning time.Duration) *metalsim.Simulator {
	cfg := metalsim.DefaultConfig()
	// Allocation to phone-home takes the given provisioning time: two thirds installing, one
	// third booting the new kernel.
	cfg.Provisioning.Installing = metalsim.Duration{Duration: provisioning - provisioning/3}
	cfg.Provisioning.BootingNewKernel = metalsim.Duration{Duration: provisioning / 3}
	cfg.Provisioning.ReclaimDelay = metalsim.Duration{Duration: 100 * time.Millisecond}
	cfg.Provisioning.ReclaimStep = metalsim.Duration{Duration: 50 * time.Millisecond}
	// Room for 2x the fleet's addresses (old and new machines during the roll).
	for i := range cfg.Networks {
		switch cfg.Networks[i].ID {
		case metalsim.DefaultExternalNetwork:
			cfg.Networks[i].Prefixes = []string{"185.0.0.0/16"}
		case metalsim.DefaultUnderlayNetwork:
			cfg.Networks[i].Prefixes = []string{"10.1.0.0/16"}
		case metalsim.DefaultPrivateNetwork:
			cfg.Networks[i].Prefixes = append(cfg.Networks[i].Prefixes, "10.64.0.0/12")
		}
	}
	sim := metalsim.New(cfg)
	if _, err := sim.AddPoolMachines(metalsim.DefaultPartition, metalsim.DefaultSize, machines); err != nil {
		b.Fatal(err)
	}
	return sim
}

func runFleet(b *testing.B, mgr managerBinary, deployments, namespaces, replicas int, provisioning, steady time.Duration) result {
	b.StopTimer()
	logf.SetLogger(logr.Discard()) // the harness's informers; the manager logs to its own file
	res := result{manager: mgr.label, deployments: deployments, namespaces: namespaces, replica: replicas, provisioning: provisioning, steady: steady}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	env, restCfg, err := testenv.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()

	sim := newSimulator(b, 2*deployments*replicas+20, provisioning)
	url, stopSim, err := sim.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer stopSim()

	harnessCfg := rest.CopyConfig(restCfg)
	harnessCfg.QPS, harnessCfg.Burst = 1000, 2000
	direct, err := client.New(harnessCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	informers, err := cache.New(harnessCfg, cache.Options{Scheme: testenv.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	obs := &observer{setSeen: map[string]time.Time{}, distZero: map[string]time.Time{}, readySeen: map[string]time.Time{}, doneAt: map[client.ObjectKey]time.Time{}}
	for obj, on := range map[client.Object]func(any){&v2.FirewallSet{}: obs.onSet, &v2.Firewall{}: obs.onFirewall, &v2.FirewallDeployment{}: obs.onDeployment} {
		inf, err := informers.GetInformer(ctx, obj)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: on, UpdateFunc: func(_, n any) { on(n) },
		}); err != nil {
			b.Fatal(err)
		}
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		b.Fatal("harness cache did not sync")
	}
	cached, err := client.New(harnessCfg, client.Options{Scheme: testenv.Scheme(), Cache: &client.CacheOptions{Reader: informers}})
	if err != nil {
		b.Fatal(err)
	}

	nsNames := make([]string, namespaces)
	for i := range nsNames {
		nsNames[i] = fmt.Sprintf("bench-%03d", i)
		if err := direct.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsNames[i]}}); err != nil {
			b.Fatal(err)
		}
	}
	// FirewallMonitors go into the manager's own cluster (no workload kubeconfig configured).
	if err := direct.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "firewall"}}); err != nil {
		b.Fatal(err)
	}

	// The manager, as a process of its own.
	dir := b.TempDir()
	if keep := os.Getenv("PALISADE_BENCH_LOGDIR"); keep != "" {
		dir = keep
		_ = os.MkdirAll(dir, 0o755)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(restCfg, kubeconfig); err != nil {
		b.Fatal(err)
	}
	port := freePort(b)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	args := []string{
		"--metal-api-url=" + url,
		"--enable-webhooks=false",
		"--metrics-secure=false",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port),
		"--health-probe-bind-address=0",
	}
	args = append(args, strings.Fields(os.Getenv("PALISADE_BENCH_MANAGER_FLAGS"))...)
	logPath := filepath.Join(dir, fmt.Sprintf("manager-%s-%d.log", strings.ReplaceAll(mgr.label, " ", "_"), deployments))
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(mgr.path, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "METAL_API_HMAC=metal-admin-key")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	proc := process{pid: cmd.Process.Pid}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if resp, err := http.Get(metricsURL); err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			b.Fatalf("manager exited: %v (log %s)", err, logPath)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("manager metrics endpoint not up (log %s)", logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// RSS is sampled, the peak kept (VmHWM would do as well; sampling also works where it is absent).
	sampleDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			rss := proc.status("VmRSS")
			obs.mu.Lock()
			obs.peakRSS = max(obs.peakRSS, rss)
			obs.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	serverClient, err := rest.UnversionedRESTClientFor(withNegotiatedSerializer(harnessCfg))
	if err != nil {
		b.Fatal(err)
	}
	snap := func() counters {
		return counters{at: time.Now(), metal: sim.RequestCounts(), api: apiRequests(metricsURL), server: serverRequests(ctx, serverClient),
			cpu: proc.cpu(), load: loadavg()}
	}

	f := &fleet{b: b, ctx: ctx, cache: cached, direct: direct, sim: sim, obs: obs, replicas: replicas}

	// 1. Create the fleet.
	obs.expect(func(d *v2.FirewallDeployment) bool {
		return d.Status.ObservedGeneration == d.Generation && d.Status.ReadyReplicas == replicas &&
			meta.IsStatusConditionTrue(d.Status.Conditions, v2.ConditionAvailable)
	})
	res.create[0] = snap()
	b.StartTimer()
	for i := range deployments {
		ns := nsNames[i%namespaces]
		d := deployment(ns, fmt.Sprintf("fd-%03d-%d", i%namespaces, i/namespaces), replicas)
		if err := direct.Create(ctx, d); err != nil {
			b.Fatal(err)
		}
		f.keys = append(f.keys, client.ObjectKeyFromObject(d))
	}
	created := time.Now()
	f.wait("create", 30*time.Minute)
	res.create[1] = snap()
	res.createToReady = res.create[1].at.Sub(res.create[0].at)
	var lastPhonedHome time.Time
	for _, e := range sim.Timeline() {
		if e.Kind == metalsim.TimelinePhonedHome && e.Time.After(lastPhonedHome) {
			lastPhonedHome = e.Time
		}
	}
	res.createAfterPhone = res.create[1].at.Sub(lastPhonedHome)

	// 2. Roll every deployment to a new image, once the safety backoff has passed.
	time.Sleep(max(0, safetyBackoff+time.Second-time.Since(created)))
	obs.expect(func(d *v2.FirewallDeployment) bool {
		p := meta.FindStatusCondition(d.Status.Conditions, v2.ConditionProgressing)
		return d.Status.ObservedGeneration == d.Generation && d.Status.ObservedRevision == 1 &&
			d.Status.ReadyReplicas == replicas && d.Status.AvailableReplicas == replicas &&
			p != nil && p.Reason == v2.ReasonNewFirewallSetAvailable && p.ObservedGeneration == d.Generation
	})
	res.roll[0] = snap()
	changed := map[client.ObjectKey]time.Time{}
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
	f.wait("roll", 30*time.Minute)
	b.StopTimer()
	res.roll[1] = snap()
	res.rollWall = res.roll[1].at.Sub(res.roll[0].at)
	res.leaked = f.allocatedMachines() - deployments*replicas
	res.phases, res.total = rollPhases(b, f, changed, res.roll[0].at)

	// 3. Steady state: nothing changes; polls and requeues of the roll have settled.
	time.Sleep(15 * time.Second)
	res.steadyC[0] = snap()
	time.Sleep(steady)
	res.steadyC[1] = snap()
	res.steadyRSS = proc.status("VmRSS")
	obs.mu.Lock()
	res.peakRSS = max(obs.peakRSS, proc.status("VmHWM"))
	obs.mu.Unlock()
	cancel()
	<-sampleDone
	return res
}

// rollPhases derives, per deployment, when each step of its roll happened (from its change):
// the new set seen, the first new machine allocated and the last one phoned home (simulator
// timeline), the last new firewall seen Ready, the last old machine freed (timeline), the new
// set moved to distance 0, and converged.
func rollPhases(b *testing.B, f *fleet, changed map[client.ObjectKey]time.Time, rollStart time.Time) ([]phase, []time.Duration) {
	type machines struct{ firstAlloc, lastPhone, lastFreed time.Time }
	byDeployment := map[string]*machines{}
	prefix := func(host string) string { // "fd-007-3-abcde" -> "fd-007-3"
		if i := strings.LastIndex(host, "-"); i > 0 {
			return host[:i]
		}
		return host
	}
	for _, e := range f.sim.Timeline() {
		if e.Time.Before(rollStart) {
			continue
		}
		m := byDeployment[prefix(e.Hostname)]
		if m == nil {
			m = &machines{}
			byDeployment[prefix(e.Hostname)] = m
		}
		switch e.Kind {
		case metalsim.TimelineAllocated:
			if m.firstAlloc.IsZero() || e.Time.Before(m.firstAlloc) {
				m.firstAlloc = e.Time
			}
		case metalsim.TimelinePhonedHome:
			m.lastPhone = later(m.lastPhone, e.Time)
		case metalsim.TimelineFreed:
			m.lastFreed = later(m.lastFreed, e.Time)
		}
	}
	var sets v2.FirewallSetList
	var fws v2.FirewallList
	if err := f.cache.List(f.ctx, &sets); err != nil {
		b.Fatal(err)
	}
	if err := f.cache.List(f.ctx, &fws); err != nil {
		b.Fatal(err)
	}
	newSet := map[client.ObjectKey]string{}
	for _, s := range sets.Items {
		if s.Annotations[v2.RevisionAnnotation] == "1" {
			newSet[client.ObjectKey{Namespace: s.Namespace, Name: s.Labels[fwutil.DeploymentLabel]}] = s.Name
		}
	}
	f.obs.mu.Lock()
	defer f.obs.mu.Unlock()
	lastReady := map[string]time.Time{} // namespace/set
	for _, fw := range fws.Items {
		if ref := metav1.GetControllerOf(&fw); ref != nil {
			k := fw.Namespace + "/" + ref.Name
			lastReady[k] = later(lastReady[k], f.obs.readySeen[fw.Namespace+"/"+fw.Name])
		}
	}
	names := []string{"new set seen", "first new machine allocated", "last new machine phoned home",
		"last new firewall seen Ready", "last old machine freed", "new set at distance 0", "converged"}
	phases := make([]phase, len(names))
	for i := range phases {
		phases[i].name = names[i]
	}
	var total []time.Duration
	for _, k := range f.keys {
		set := k.Namespace + "/" + newSet[k]
		m := byDeployment[k.Name]
		if m == nil {
			b.Fatalf("no new machines seen for %s", k)
		}
		at := []time.Time{f.obs.setSeen[set], m.firstAlloc, m.lastPhone, lastReady[set], m.lastFreed, f.obs.distZero[set], f.obs.doneAt[k]}
		for i, t := range at {
			if !t.IsZero() {
				phases[i].d = append(phases[i].d, t.Sub(changed[k]))
			}
		}
		total = append(total, f.obs.doneAt[k].Sub(changed[k]))
	}
	return phases, total
}

func withNegotiatedSerializer(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	return c
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func perMinute(n int, d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(n)/d.Minutes())
}

// markdown renders the runs as the tables of docs/benchmarks.md.
func markdown(results []result) string {
	var sb strings.Builder
	if len(results) == 0 {
		return ""
	}
	r0 := results[0]
	fmt.Fprintf(&sb, "Measured %s: %d replicas per deployment, provisioning (allocation to phone-home) %s, steady window %s; %d CPUs, load average (1, 5, 15 min) at each phase's end.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), r0.replica, r0.provisioning, r0.steady, runtime.NumCPU())
	sb.WriteString("| manager | deployments / namespaces | create -> all ready | roll p50 / p95 / max | roll p95 beyond provisioning | metal-api req create / roll / steady per min | API req create / roll / steady per min | manager RSS peak / steady | manager CPU roll / steady | load after roll / steady |\n")
	sb.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		steadyDur := r.steadyC[1].at.Sub(r.steadyC[0].at)
		cpuRoll := (r.roll[1].cpu - r.roll[0].cpu).Seconds() / r.rollWall.Seconds() * 100
		cpuSteady := (r.steadyC[1].cpu - r.steadyC[0].cpu).Seconds() / steadyDur.Seconds() * 100
		fmt.Fprintf(&sb, "| %s | %d / %d | %s (%s after the last phone-home) | %s / %s / %s | %s | %d / %d / %s | %d / %d / %s | %.0f / %.0f MiB | %.0f %% / %.2f %% of a core | %s / %s |\n",
			r.manager, r.deployments, r.namespaces,
			seconds(r.createToReady), seconds(r.createAfterPhone),
			seconds(percentile(r.total, 0.5)), seconds(percentile(r.total, 0.95)), seconds(percentile(r.total, 1)),
			seconds(percentile(r.total, 0.95)-r.provisioning),
			sum(diff(r.create[1].metal, r.create[0].metal)), sum(diff(r.roll[1].metal, r.roll[0].metal)),
			perMinute(sum(diff(r.steadyC[1].metal, r.steadyC[0].metal)), steadyDur),
			sum(diff(r.create[1].api, r.create[0].api)), sum(diff(r.roll[1].api, r.roll[0].api)),
			perMinute(sum(diff(r.steadyC[1].api, r.steadyC[0].api)), steadyDur),
			float64(r.peakRSS)/mib, float64(r.steadyRSS)/mib, cpuRoll, cpuSteady,
			r.roll[1].load, r.steadyC[1].load)
	}
	sb.WriteString("\nRoll phases per deployment, from its image change (p50 / p95):\n\n| manager | deployments |")
	for _, p := range r0.phases {
		fmt.Fprintf(&sb, " %s |", p.name)
	}
	sb.WriteString("\n| --- | --- |" + strings.Repeat(" --- |", len(r0.phases)) + "\n")
	for _, r := range results {
		fmt.Fprintf(&sb, "| %s | %d |", r.manager, r.deployments)
		for _, p := range r.phases {
			fmt.Fprintf(&sb, " %s / %s |", seconds(percentile(p.d, 0.5)), seconds(percentile(p.d, 0.95)))
		}
		sb.WriteString("\n")
	}
	sb.WriteString("\nRequests by kind (create; roll; steady window):\n\n")
	for _, r := range results {
		fmt.Fprintf(&sb, "- %s, %d deployments: metal-api %v; %v; %v. API server %v; %v; %v\n", r.manager, r.deployments,
			diff(r.create[1].metal, r.create[0].metal), diff(r.roll[1].metal, r.roll[0].metal), diff(r.steadyC[1].metal, r.steadyC[0].metal),
			diff(r.create[1].api, r.create[0].api), diff(r.roll[1].api, r.roll[0].api), diff(r.steadyC[1].api, r.steadyC[0].api))
		fmt.Fprintf(&sb, "  - at the API server (all clients), roll: %v; steady: %v\n", diff(r.roll[1].server, r.roll[0].server), diff(r.steadyC[1].server, r.steadyC[0].server))
	}
	return sb.String()
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
