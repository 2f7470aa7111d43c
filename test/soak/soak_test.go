// Package soak runs a randomized fault schedule against the real API server (envtest), the
// metal-api simulator over HTTP, the manager (restarted now and then) and a simulated agent,
// and checks the rollout guarantees all along:
//
//	(a) no Firewall has two live machines for longer than a short bound,
//	(b) at the end the simulator's live machines are exactly the Firewalls' machines,
//	(c) no deployment that had a ready firewall has none because the manager removed one,
//	(d) every deployment converges once the faults stop,
//	(e) no metal-api write for a paused deployment.
//
// SOAK_SEED picks the schedule (printed), SOAK_DURATION the length of the fault phase. Without
// them a short fixed-seed run is part of `go test ./...`; `make soak` runs the long one.
package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
)

const (
	namespace = "soak"
	// duplicateBound is how long two live machines for one Firewall are tolerated (a). The
	// manager frees a duplicate at its next look-up; the bound covers a restart and polling.
	duplicateBound = 45 * time.Second
	// slowAllocateMax is the longest server-side allocation injected; the client gives up
	// after clientTimeout and the manager waits allocationGrace before allocating again.
	slowAllocateMax  = 4 * time.Second
	clientTimeout    = 1500 * time.Millisecond
	allocationGrace  = 10 * time.Second
	convergeDeadline = 5 * time.Minute
)

var images = []string{"firewall-ubuntu-3.0.20240503", "firewall-ubuntu-3.0.20240201", "firewall-ubuntu-2.0.20230101"}

type soak struct {
	t     *testing.T
	rng   *rand.Rand
	stack *harness.Stack
	c     client.Client
	ctx   context.Context

	mu         sync.Mutex
	faults     map[string]int
	restarts   int
	violations []string
	// busy deployments are in a pause-change-unpause or a delete-recreate.
	busy map[string]bool
	// pauseWindows per deployment: no metal-api write for it may fall in them (e).
	pauseWindows map[string][][2]time.Time
	// agentDown are firewalls whose agent stopped reporting (heartbeat loss).
	agentDown map[string]bool
	// faultTargets are firewalls a fault hit (and when): their loss of readiness is not the manager's.
	faultTargets map[string]time.Time
	// handDeleted deployments: their firewalls going away is not the manager's doing.
	handDeleted map[string]time.Time
	// duplicateSince per firewall name, for (a).
	duplicateSince map[string]time.Time
	// lastReady per deployment: the ready firewalls at the previous sample, for (c).
	lastReady map[string][]string
	undo      []func()
}

func envDuration(key string, def time.Duration) time.Duration {
	if v := os.Getenv(key); v != "" {
		d, err := time.ParseDuration(v)
		if err == nil {
			return d
		}
	}
	return def
}

func TestSoak(t *testing.T) {
	seed := uint64(20261201)
	if v := os.Getenv("SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED: %v", err)
		}
		seed = s
	}
	duration := envDuration("SOAK_DURATION", 100*time.Second)
	t.Logf("soak seed %d, fault phase %s (SOAK_SEED, SOAK_DURATION)", seed, duration)
	started := time.Now()

	simCfg := metalsim.DefaultConfig()
	simCfg.Provisioning.Installing.Duration = 600 * time.Millisecond
	simCfg.Provisioning.BootingNewKernel.Duration = 300 * time.Millisecond
	simCfg.Provisioning.ReclaimDelay.Duration = 300 * time.Millisecond
	simCfg.Provisioning.ReclaimStep.Duration = 100 * time.Millisecond
	simCfg.Provisioning.DeadAfter.Duration = 5 * time.Second
	simCfg.Provisioning.HeartbeatInterval.Duration = time.Second
	simCfg.Provisioning.FailedReclaimAfter.Duration = 3 * time.Second
	stack := harness.New(harness.Options{
		Simulator: &simCfg,
		Logger:    harness.TestLogger(),
		Manager: func(o *manager.Options) {
			o.Firewall.CreatingPoll = 300 * time.Millisecond
			o.Firewall.RunningPoll = 2 * time.Second
			o.Firewall.ConnectedThreshold = 6 * time.Second
			o.Firewall.SeedConnectedThreshold = 6 * time.Second
			o.Firewall.AllocationGrace = allocationGrace
			o.Timeouts = fwutil.Timeouts{Create: 40 * time.Second, Health: 30 * time.Second}
		},
	})
	for _, step := range []func() error{stack.StartAPIServer, stack.StartSimulator} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = stack.Stop() })
	// An impatient client, so that slow allocations outlive it.
	impatient, err := metal.New(metal.Config{URL: stack.SimURL, HMACKey: harness.MetalAdminKey, HMACAuthType: metal.AuthTypeAdmin, Timeout: clientTimeout})
	if err != nil {
		t.Fatal(err)
	}
	stack.Metal = impatient
	if _, err := stack.Sim.AddPoolMachines(metalsim.DefaultPartition, metalsim.DefaultSize, 80); err != nil {
		t.Fatal(err)
	}
	if err := stack.StartManager(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &soak{
		t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), stack: stack, c: stack.Client, ctx: ctx,
		faults: map[string]int{}, busy: map[string]bool{}, pauseWindows: map[string][][2]time.Time{},
		agentDown: map[string]bool{}, faultTargets: map[string]time.Time{}, handDeleted: map[string]time.Time{},
		duplicateSince: map[string]time.Time{}, lastReady: map[string][]string{},
	}
	if err := s.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	names := []string{"dep-a", "dep-b", "dep-c"}
	for i, name := range names {
		if err := s.c.Create(ctx, s.deployment(name, 1+i%2, []int32{0, 1, 3}[i])); err != nil {
			t.Fatal(err)
		}
	}

	// The agent and the sampler run until the end of the checks.
	bg, stopBackground := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.agent(bg) }()
	go func() { defer wg.Done(); s.sample(bg, names) }()

	// Let the deployments come up before the faults start.
	s.waitConverged(names, 2*time.Minute)
	faultsEnd := time.Now().Add(duration)
	var fwg sync.WaitGroup
	for time.Now().Before(faultsEnd) {
		s.inject(names, &fwg)
		time.Sleep(time.Duration(80+s.rng.IntN(220)) * time.Millisecond)
	}
	fwg.Wait()
	s.heal(names)
	converged := s.waitConverged(names, convergeDeadline)
	if !converged {
		s.violate("(d) the deployments did not converge within %s after the faults stopped", convergeDeadline)
	} else {
		s.checkMachines(names)
	}
	stopBackground()
	wg.Wait()
	s.checkPauseWrites(names)
	s.report(seed, duration, time.Since(started))
	if len(s.violations) > 0 {
		t.Fatalf("%d violations:\n%s", len(s.violations), strings.Join(s.violations, "\n"))
	}
}

func (s *soak) deployment(name string, replicas int, history int32) *v2.FirewallDeployment {
	return &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v2.FirewallDeploymentSpec{
			Strategy:             v2.StrategyRollingUpdate,
			Replicas:             replicas,
			RevisionHistoryLimit: ptr.To(history),
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: v2.FirewallSpec{
					Size: metalsim.DefaultSize, Image: images[0], Partition: metalsim.DefaultPartition, Project: metalsim.DefaultProject,
					Networks: []string{metalsim.DefaultExternalNetwork, metalsim.DefaultPrivateNetwork},
					Userdata: `{"ignition":{"version":"3.4.0"}}`,
				},
			},
		},
	}
}

func (s *soak) violate(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := fmt.Sprintf("%s %s", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	s.violations = append(s.violations, msg)
	s.t.Log("VIOLATION " + msg)
}

func (s *soak) count(kind string) {
	s.mu.Lock()
	s.faults[kind]++
	s.mu.Unlock()
}

// ---- the agent

// agent plays the firewall agents: every running firewall whose agent is not down reports a
// successful apply of its current generation and distance, at most once a second unless its
// distance or generation changed.
func (s *soak) agent(ctx context.Context) {
	last := map[string]time.Time{}
	for ctx.Err() == nil {
		var list v2.FirewallList
		if err := s.c.List(ctx, &list, client.InNamespace(namespace)); err == nil {
			for i := range list.Items {
				fw := &list.Items[i]
				s.mu.Lock()
				down := s.agentDown[fw.Name]
				s.mu.Unlock()
				if down || fw.Status.Phase != v2.FirewallPhaseRunning || !fw.DeletionTimestamp.IsZero() {
					continue
				}
				cs := fw.Status.ControllerStatus
				if cs != nil && time.Since(last[fw.Name]) < time.Second && cs.ActualDistance == fw.Distance && cs.ObservedGeneration == fw.Generation {
					continue
				}
				before := fw.DeepCopy()
				applied := true
				fw.Status.ControllerStatus = &v2.ControllerConnection{
					ActualVersion: "v2.0.0-soak", Updated: metav1.Now(), SeedUpdated: metav1.Now(),
					ActualDistance: fw.Distance, ObservedGeneration: fw.Generation, RulesApplied: &applied,
				}
				if err := s.c.Status().Patch(ctx, fw, client.MergeFrom(before)); err == nil {
					last[fw.Name] = time.Now()
				}
			}
		}
		sleepCtx(ctx, 300*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// ---- faults

type fault struct {
	kind   string
	weight int
	do     func(s *soak, names []string, wg *sync.WaitGroup) bool
}

var faultKinds = []fault{
	{"image-change", 8, (*soak).changeImage},
	{"replica-change", 4, (*soak).changeReplicas},
	{"pause-change-unpause", 3, (*soak).pauseChangeUnpause},
	{"manager-restart", 1, (*soak).restart},
	{"lost-allocate-response", 4, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		s.stack.Sim.Faults().LoseNextAllocateResponse(1)
		return true
	}},
	{"slow-allocate", 4, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		s.stack.Sim.Faults().SlowAllocate(1, clientTimeout+time.Duration(s.rng.Int64N(int64(slowAllocateMax-clientTimeout))))
		return true
	}},
	{"5xx-burst", 5, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		ops := []string{metal.OpFirewallFind, metal.OpFirewallAllocate, metal.OpMachineFree, metal.OpFirewallGet, metal.OpMachineUpdate}
		s.stack.Sim.Faults().FailNext(ops[s.rng.IntN(len(ops))], 1+s.rng.IntN(6), []int{500, 502, 503}[s.rng.IntN(3)])
		return true
	}},
	{"409-on-free", 3, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		s.stack.Sim.Faults().FailNext(metal.OpMachineFree, 1+s.rng.IntN(3), 409)
		return true
	}},
	{"latency", 3, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		s.stack.Sim.Faults().Latency(time.Duration(20+s.rng.IntN(250)) * time.Millisecond)
		s.later(time.Duration(1+s.rng.IntN(3))*time.Second, func() { s.stack.Sim.Faults().Latency(0) })
		return true
	}},
	{"stalled-provisioning", 3, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		name := s.pickFirewall(func(fw *v2.Firewall) bool { return fw.Status.Phase != v2.FirewallPhaseRunning })
		if name == "" {
			return false
		}
		s.hit(name)
		s.stack.Sim.Faults().StallProvisioning(name)
		s.later(time.Duration(2+s.rng.IntN(8))*time.Second, func() { s.stack.Sim.Faults().ResumeProvisioning(name) })
		return true
	}},
	{"crash-loop", 2, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		name := s.pickFirewall(func(fw *v2.Firewall) bool { return fw.Status.Phase != v2.FirewallPhaseRunning })
		if name == "" {
			return false
		}
		s.hit(name)
		s.stack.Sim.Faults().CrashLoop(name)
		s.later(time.Duration(2+s.rng.IntN(8))*time.Second, func() { s.stack.Sim.Faults().StopCrashLoop(name) })
		return true
	}},
	{"heartbeat-loss", 3, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		name := s.pickFirewall(func(fw *v2.Firewall) bool { return fw.Status.Phase == v2.FirewallPhaseRunning })
		if name == "" {
			return false
		}
		s.hit(name)
		s.mu.Lock()
		s.agentDown[name] = true
		s.mu.Unlock()
		s.stack.Sim.Faults().StopHeartbeat(name)
		s.later(time.Duration(2+s.rng.IntN(10))*time.Second, func() {
			s.stack.Sim.Faults().ResumeHeartbeat(name)
			s.mu.Lock()
			delete(s.agentDown, name)
			s.mu.Unlock()
		})
		return true
	}},
	{"failed-reclaim", 2, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		m := s.pickMachine()
		if m == "" {
			return false
		}
		s.stack.Sim.Faults().FailReclaim(m)
		return true
	}},
	{"vanished-machine", 2, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		m := s.pickMachine()
		if m == "" {
			return false
		}
		if snap, ok := s.stack.Sim.Machine(m); ok && snap.Allocation != nil {
			s.hit(snap.Allocation.Name)
		}
		return s.stack.Sim.Faults().Vanish(m) == nil
	}},
	{"duplicate-allocate", 3, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		s.stack.Sim.Faults().DuplicateNextAllocate(1)
		return true
	}},
	{"firewall-deleted-by-hand", 2, func(s *soak, _ []string, _ *sync.WaitGroup) bool {
		var list v2.FirewallList
		if err := s.c.List(s.ctx, &list, client.InNamespace(namespace)); err != nil || len(list.Items) == 0 {
			return false
		}
		fw := list.Items[s.rng.IntN(len(list.Items))]
		if s.isBusy(deploymentOf(fw.Name)) {
			return false
		}
		s.hit(fw.Name)
		return client.IgnoreNotFound(s.c.Delete(s.ctx, &fw)) == nil
	}},
	{"deployment-deleted-by-hand", 1, (*soak).deleteAndRecreate},
}

func (s *soak) inject(names []string, wg *sync.WaitGroup) {
	total := 0
	for _, f := range faultKinds {
		total += f.weight
	}
	n := s.rng.IntN(total)
	for _, f := range faultKinds {
		if n < f.weight {
			if f.do(s, names, wg) {
				s.count(f.kind)
			}
			return
		}
		n -= f.weight
	}
}

func (s *soak) later(d time.Duration, f func()) {
	s.mu.Lock()
	s.undo = append(s.undo, f)
	s.mu.Unlock()
	time.AfterFunc(d, f)
}

func (s *soak) hit(firewall string) {
	s.mu.Lock()
	s.faultTargets[firewall] = time.Now()
	s.mu.Unlock()
}

func (s *soak) isBusy(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy[name]
}

func (s *soak) claim(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[name] {
		return false
	}
	s.busy[name] = true
	return true
}

func (s *soak) release(name string) {
	s.mu.Lock()
	delete(s.busy, name)
	s.mu.Unlock()
}

// deploymentOf maps "dep-a-xxxxx" to "dep-a".
func deploymentOf(firewall string) string {
	if i := strings.LastIndex(firewall, "-"); i > 0 {
		return firewall[:i]
	}
	return firewall
}

func (s *soak) pickFirewall(ok func(*v2.Firewall) bool) string {
	var list v2.FirewallList
	if err := s.c.List(s.ctx, &list, client.InNamespace(namespace)); err != nil {
		return ""
	}
	var names []string
	for i := range list.Items {
		if ok(&list.Items[i]) && list.Items[i].DeletionTimestamp.IsZero() {
			names = append(names, list.Items[i].Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[s.rng.IntN(len(names))]
}

func (s *soak) pickMachine() string {
	var ids []string
	for _, m := range s.ours() {
		ids = append(ids, m.ID)
	}
	if len(ids) == 0 {
		return ""
	}
	sort.Strings(ids)
	return ids[s.rng.IntN(len(ids))]
}

// ours are the simulator's allocated machines of the soak namespace.
func (s *soak) ours() []metalsim.MachineSnapshot {
	var out []metalsim.MachineSnapshot
	for _, m := range s.stack.Sim.Machines() {
		if m.Allocation != nil && slices.Contains(m.Tags, v2.NamespaceTag+"="+namespace) {
			out = append(out, m)
		}
	}
	return out
}

func (s *soak) update(name string, mutate func(*v2.FirewallDeployment)) bool {
	for range 10 {
		d := &v2.FirewallDeployment{}
		if err := s.c.Get(s.ctx, client.ObjectKey{Namespace: namespace, Name: name}, d); err != nil {
			return false
		}
		if !d.DeletionTimestamp.IsZero() {
			return false
		}
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		mutate(d)
		err := s.c.Update(s.ctx, d)
		if err == nil {
			return true
		}
		if !apierrors.IsConflict(err) {
			return false
		}
	}
	return false
}

func (s *soak) changeImage(names []string, _ *sync.WaitGroup) bool {
	name := names[s.rng.IntN(len(names))]
	if s.isBusy(name) {
		return false
	}
	image := images[s.rng.IntN(len(images))]
	return s.update(name, func(d *v2.FirewallDeployment) { d.Spec.Template.Spec.Image = image })
}

func (s *soak) changeReplicas(names []string, _ *sync.WaitGroup) bool {
	name := names[s.rng.IntN(len(names))]
	if s.isBusy(name) {
		return false
	}
	replicas := 1 + s.rng.IntN(2)
	return s.update(name, func(d *v2.FirewallDeployment) { d.Spec.Replicas = replicas })
}

func (s *soak) restart(_ []string, _ *sync.WaitGroup) bool {
	if err := s.stack.StartManager(); err != nil {
		s.violate("manager restart failed: %v", err)
		return false
	}
	s.mu.Lock()
	s.restarts++
	s.mu.Unlock()
	return true
}

// pauseChangeUnpause pauses a deployment, waits until it and every child report the pause,
// changes its image, keeps it paused a while (the window checked by (e)), then unpauses.
func (s *soak) pauseChangeUnpause(names []string, wg *sync.WaitGroup) bool {
	name := names[s.rng.IntN(len(names))]
	if !s.claim(name) {
		return false
	}
	image := images[s.rng.IntN(len(images))]
	hold := time.Duration(2+s.rng.IntN(4)) * time.Second
	if !s.update(name, func(d *v2.FirewallDeployment) { d.Annotations[v2.PausedAnnotation] = "true" }) {
		s.release(name)
		return false
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer s.release(name)
		confirmed := s.waitPaused(name, 30*time.Second)
		s.update(name, func(d *v2.FirewallDeployment) { d.Spec.Template.Spec.Image = image })
		// A request sent before the pause was seen may still land: a slow allocation, or a
		// call with its retries. The window starts after them.
		start := time.Now().Add(slowAllocateMax + 4*time.Second)
		time.Sleep(slowAllocateMax + 4*time.Second + hold)
		end := time.Now()
		if confirmed {
			s.mu.Lock()
			s.pauseWindows[name] = append(s.pauseWindows[name], [2]time.Time{start, end})
			s.mu.Unlock()
		}
		for !s.update(name, func(d *v2.FirewallDeployment) { delete(d.Annotations, v2.PausedAnnotation) }) && s.ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return true
}

// waitPaused waits until the deployment, its sets and their firewalls all report Paused.
func (s *soak) waitPaused(name string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if s.allPaused(name) {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func (s *soak) allPaused(name string) bool {
	d := &v2.FirewallDeployment{}
	if err := s.c.Get(s.ctx, client.ObjectKey{Namespace: namespace, Name: name}, d); err != nil ||
		!meta.IsStatusConditionTrue(d.Status.Conditions, v2.ConditionPaused) {
		return false
	}
	var sets v2.FirewallSetList
	var fws v2.FirewallList
	if s.c.List(s.ctx, &sets, client.InNamespace(namespace)) != nil || s.c.List(s.ctx, &fws, client.InNamespace(namespace)) != nil {
		return false
	}
	for _, set := range sets.Items {
		if set.Labels[fwutil.DeploymentLabel] == name && !meta.IsStatusConditionTrue(set.Status.Conditions, v2.ConditionPaused) {
			return false
		}
	}
	for _, fw := range fws.Items {
		if deploymentOf(fw.Name) == name && !meta.IsStatusConditionTrue(fw.Status.Conditions, v2.ConditionPaused) {
			return false
		}
	}
	return true
}

// deleteAndRecreate deletes a deployment by hand and creates it again once it is gone.
func (s *soak) deleteAndRecreate(names []string, wg *sync.WaitGroup) bool {
	name := names[s.rng.IntN(len(names))]
	if !s.claim(name) {
		return false
	}
	d := &v2.FirewallDeployment{}
	if err := s.c.Get(s.ctx, client.ObjectKey{Namespace: namespace, Name: name}, d); err != nil {
		s.release(name)
		return false
	}
	s.mu.Lock()
	s.handDeleted[name] = time.Now()
	s.mu.Unlock()
	if err := s.c.Delete(s.ctx, d); err != nil {
		s.release(name)
		return false
	}
	replicas, history := d.Spec.Replicas, ptr.Deref(d.Spec.RevisionHistoryLimit, 0)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer s.release(name)
		for s.ctx.Err() == nil {
			err := s.c.Get(s.ctx, client.ObjectKey{Namespace: namespace, Name: name}, &v2.FirewallDeployment{})
			if apierrors.IsNotFound(err) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		_ = s.c.Create(s.ctx, s.deployment(name, replicas, history))
		s.mu.Lock()
		s.handDeleted[name] = time.Now()
		s.mu.Unlock()
	}()
	return true
}

// heal ends every fault: the schedule is over, now everything must converge (d).
func (s *soak) heal(names []string) {
	s.mu.Lock()
	undo := s.undo
	s.undo = nil
	s.agentDown = map[string]bool{}
	s.mu.Unlock()
	for _, f := range undo {
		f()
	}
	s.stack.Sim.Faults().Reset()
	for _, name := range names {
		s.update(name, func(d *v2.FirewallDeployment) { delete(d.Annotations, v2.PausedAnnotation) })
	}
}

// ---- invariants

// sample checks (a) and (c) continuously.
func (s *soak) sample(ctx context.Context, names []string) {
	for ctx.Err() == nil {
		now := time.Now()
		// (a) two live machines for one firewall, for longer than the bound.
		byName := map[string]int{}
		for _, m := range s.ours() {
			byName[m.Allocation.Name]++
		}
		s.mu.Lock()
		for name, n := range byName {
			if n < 2 {
				delete(s.duplicateSince, name)
				continue
			}
			since, ok := s.duplicateSince[name]
			if !ok {
				s.duplicateSince[name] = now
				continue
			}
			if now.Sub(since) > duplicateBound {
				s.duplicateSince[name] = now // report once per bound
				s.mu.Unlock()
				s.violate("(a) firewall %s has %d live machines for longer than %s", name, n, duplicateBound)
				s.mu.Lock()
			}
		}
		for name := range s.duplicateSince {
			if byName[name] < 2 {
				delete(s.duplicateSince, name)
			}
		}
		s.mu.Unlock()

		s.checkReady(names, now)
		sleepCtx(ctx, 250*time.Millisecond)
	}
}

// carries is "this firewall carries traffic": its machine is up and phoned home, and its agent
// is alive and applied its rules (reported within agentAlive). Whether the agent has caught up
// with the newest generation is left out, as is the Distance condition: a firewall whose
// distance or rules are being updated keeps routing with the previous ones.
func carries(fw *v2.Firewall) bool {
	cs := fw.Status.ControllerStatus
	return fw.DeletionTimestamp.IsZero() && fw.Status.Phase == v2.FirewallPhaseRunning &&
		meta.IsStatusConditionTrue(fw.Status.Conditions, v2.ConditionReady) &&
		cs != nil && cs.RulesApplied != nil && *cs.RulesApplied && time.Since(cs.Updated.Time) < agentAlive
}

// agentAlive is how recent an agent's report must be for its firewall to count as carrying.
const agentAlive = 6 * time.Second

// describe says why a firewall does not carry traffic, for violation reports.
func describe(fw *v2.Firewall) string {
	var notTrue []string
	for _, c := range fw.Status.Conditions {
		if c.Status != metav1.ConditionTrue {
			notTrue = append(notTrue, c.Type+"="+string(c.Status)+"("+c.Reason+")")
		}
	}
	return fmt.Sprintf("%s phase=%s deleting=%v not-true=%v", fw.Name, fw.Status.Phase, !fw.DeletionTimestamp.IsZero(), notTrue)
}

// checkReady is (c): a deployment that had a ready firewall at the last sample has none now,
// and the manager removed one that was ready, not a fault.
func (s *soak) checkReady(names []string, now time.Time) {
	var fws v2.FirewallList
	if err := s.c.List(s.ctx, &fws, client.InNamespace(namespace)); err != nil {
		return
	}
	present := map[string]*v2.Firewall{}
	ready := map[string][]string{}
	for i := range fws.Items {
		fw := &fws.Items[i]
		present[fw.Name] = fw
		if carries(fw) {
			ready[deploymentOf(fw.Name)] = append(ready[deploymentOf(fw.Name)], fw.Name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range names {
		prev := s.lastReady[name]
		s.lastReady[name] = ready[name]
		if len(prev) == 0 || len(ready[name]) > 0 || now.Sub(s.handDeleted[name]) < time.Minute {
			continue
		}
		d := &v2.FirewallDeployment{}
		if err := s.c.Get(s.ctx, client.ObjectKey{Namespace: namespace, Name: name}, d); err != nil || !d.DeletionTimestamp.IsZero() {
			continue
		}
		var removed []string
		faulted := false
		for _, fw := range prev {
			if t, ok := s.faultTargets[fw]; ok && now.Sub(t) < 2*time.Minute {
				faulted = true
			}
			if p, ok := present[fw]; !ok || !p.DeletionTimestamp.IsZero() {
				removed = append(removed, fw)
			}
		}
		if len(removed) > 0 && !faulted {
			var states []string
			for _, fw := range prev {
				if p, ok := present[fw]; ok {
					states = append(states, describe(p))
				}
			}
			msg := fmt.Sprintf("(c) deployment %s had ready firewalls %v, now none: the manager removed %v; %v", name, prev, removed, states)
			s.violations = append(s.violations, now.UTC().Format("15:04:05.000")+" "+msg)
			s.t.Log("VIOLATION " + msg)
		}
	}
}

// waitConverged is (d): every deployment available with its replicas, one set carrying them,
// every firewall running with one machine.
func (s *soak) waitConverged(names []string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	var why string
	for time.Now().Before(deadline) {
		if why = s.converged(names); why == "" {
			return true
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.t.Logf("not converged: %s", why)
	return false
}

func (s *soak) converged(names []string) string {
	var fws v2.FirewallList
	var sets v2.FirewallSetList
	if err := s.c.List(s.ctx, &fws, client.InNamespace(namespace)); err != nil {
		return err.Error()
	}
	if err := s.c.List(s.ctx, &sets, client.InNamespace(namespace)); err != nil {
		return err.Error()
	}
	for _, name := range names {
		d := &v2.FirewallDeployment{}
		if err := s.c.Get(s.ctx, client.ObjectKey{Namespace: namespace, Name: name}, d); err != nil {
			return fmt.Sprintf("%s: %v", name, err)
		}
		if d.Status.ObservedGeneration != d.Generation || v2.IsPaused(d.Annotations) {
			return name + ": not observed or paused"
		}
		c := meta.FindStatusCondition(d.Status.Conditions, v2.ConditionProgressing)
		if c == nil || c.Reason != v2.ReasonNewFirewallSetAvailable {
			return name + ": rollout not complete"
		}
		running := 0
		for _, fw := range fws.Items {
			if deploymentOf(fw.Name) != name {
				continue
			}
			if !carries(&fw) || !meta.IsStatusConditionTrue(fw.Status.Conditions, v2.ConditionConnected) || fw.Spec.Image != d.Spec.Template.Spec.Image {
				return fmt.Sprintf("%s: firewall %s not running the spec", name, fw.Name)
			}
			running++
		}
		if running != d.Spec.Replicas {
			return fmt.Sprintf("%s: %d firewalls, want %d", name, running, d.Spec.Replicas)
		}
		live := 0
		for _, set := range sets.Items {
			if set.Labels[fwutil.DeploymentLabel] == name && set.Spec.Replicas > 0 {
				live++
			}
		}
		if live != 1 {
			return fmt.Sprintf("%s: %d sets with replicas", name, live)
		}
	}
	return ""
}

// checkMachines is (b): the live machines are exactly the Firewalls' machines.
func (s *soak) checkMachines(names []string) {
	// Duplicates are freed at the next look-up; give the last ones a moment.
	deadline := time.Now().Add(time.Minute)
	for {
		var fws v2.FirewallList
		if err := s.c.List(s.ctx, &fws, client.InNamespace(namespace)); err != nil {
			s.violate("(b) listing firewalls: %v", err)
			return
		}
		var want, got []string
		for _, fw := range fws.Items {
			if fw.Status.MachineStatus != nil {
				want = append(want, fw.Status.MachineStatus.MachineID)
			}
		}
		for _, m := range s.ours() {
			got = append(got, m.ID)
		}
		sort.Strings(want)
		sort.Strings(got)
		if slices.Equal(want, got) && len(want) == len(fws.Items) {
			return
		}
		if time.Now().After(deadline) {
			s.violate("(b) live machines %v, firewalls' machines %v", got, want)
			for _, m := range s.ours() {
				if !slices.Contains(want, m.ID) {
					var story []string
					for _, e := range s.stack.Sim.Timeline() {
						if e.Hostname == m.Allocation.Name {
							story = append(story, fmt.Sprintf("%s %s %s %s", e.Time.UTC().Format("15:04:05.000"), e.Kind, e.MachineID, e.Note))
						}
					}
					s.t.Logf("leaked %s (%s): %s", m.ID, m.Allocation.Name, strings.Join(story, "; "))
				}
			}
			return
		}
		time.Sleep(time.Second)
	}
}

// checkPauseWrites is (e): no allocation, free or update of a paused deployment's machines.
func (s *soak) checkPauseWrites(names []string) {
	s.mu.Lock()
	windows := s.pauseWindows
	s.mu.Unlock()
	for _, e := range s.stack.Sim.Timeline() {
		switch e.Kind {
		case metalsim.TimelineAllocated, metalsim.TimelineFreed, metalsim.TimelineUpdated, metalsim.TimelineReinstalled:
		default:
			continue
		}
		for _, w := range windows[deploymentOf(e.Hostname)] {
			if !e.Time.Before(w[0]) && !e.Time.After(w[1]) {
				s.violate("(e) %s of machine %s (%s) at %s while its deployment was paused", e.Kind, e.MachineID, e.Hostname, e.Time.UTC().Format("15:04:05.000"))
			}
		}
	}
}

func (s *soak) report(seed uint64, duration, wall time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kinds := make([]string, 0, len(s.faults))
	total := 0
	for k, n := range s.faults {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		total += n
	}
	sort.Strings(kinds)
	windows := 0
	for _, w := range s.pauseWindows {
		windows += len(w)
	}
	line := fmt.Sprintf("seed=%d fault-phase=%s faults=%d restarts=%d pause-windows=%d violations=%d wall=%s kinds: %s",
		seed, duration, total, s.restarts, windows, len(s.violations), wall.Round(time.Second), strings.Join(kinds, " "))
	s.t.Log("SOAK " + line)
	if path := os.Getenv("SOAK_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = fmt.Fprintln(f, line)
			_ = f.Close()
		}
	}
}
