// Package workload connects the manager to the workload clusters that receive FirewallMonitors.
// One connection per kubeconfig is created on first use, watched for the agent's reports, and
// dropped when no firewall used it for a while or when its kubeconfig changed.
package workload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// DefaultMonitorNamespace is where monitors live in a workload cluster, as upstream has it.
const DefaultMonitorNamespace = "firewall"

// SecretRef names the key of a kubeconfig Secret.
type SecretRef struct{ Name, Key string }

// ParseSecretRef parses "<name>" (key "value") or "<name>/<key>".
func ParseSecretRef(s string) (SecretRef, error) {
	name, key, found := strings.Cut(s, "/")
	if !found {
		key = v2.DefaultUserdataKey
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return SecretRef{}, fmt.Errorf("secret name %q: %s", name, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsConfigMapKey(key); len(msgs) > 0 {
		return SecretRef{}, fmt.Errorf("secret key %q: %s", key, strings.Join(msgs, "; "))
	}
	return SecretRef{Name: name, Key: key}, nil
}

// UnavailableError says why a workload cluster cannot be used; the firewall reports it in its
// MonitorDeployed condition and tries again later.
type UnavailableError struct {
	Reason  string
	Message string
}

func (e *UnavailableError) Error() string { return e.Message }

// Reasons of an UnavailableError.
const (
	ReasonKubeconfigMissing = "KubeconfigMissing"
	ReasonKubeconfigInvalid = "KubeconfigInvalid"
	ReasonUnreachable       = "WorkloadClusterUnreachable"
)

// Cluster is a connection to one workload cluster.
type Cluster struct {
	// Client writes monitors; reads of FirewallMonitors in the monitor namespace come from a cache.
	Client client.Client
	// APIReader reads from the API server itself, for decisions a lagging cache must not make
	// (a monitor written a moment ago that is about to be deleted).
	APIReader client.Reader
	// Namespace is where the monitors live.
	Namespace string
	// Local is true in single-cluster mode (the manager's own cluster).
	Local bool
	// Server and CAData are the API server URL and CA bundle of the connection.
	Server string
	CAData []byte

	key      string
	cancel   context.CancelFunc
	mu       sync.Mutex
	lastUsed time.Time
	nsReady  bool
}

// NamespaceEnsured reports whether the monitor namespace was created or found before, and
// remembers that it is now.
func (c *Cluster) NamespaceEnsured() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ready := c.nsReady
	c.nsReady = true
	return ready
}

// ForgetNamespace makes the next write check the namespace again (it was deleted).
func (c *Cluster) ForgetNamespace() {
	c.mu.Lock()
	c.nsReady = false
	c.mu.Unlock()
}

// Registry hands out workload cluster connections. It is a manager Runnable: connections live
// as long as the manager and are stopped when idle.
type Registry struct {
	// Seed reads the kubeconfig Secrets in the firewalls' namespaces.
	Seed client.Reader
	// Local is the manager's own cluster, used when a firewall names no kubeconfig.
	Local *rest.Config
	// DefaultSecret is the kubeconfig Secret used when a firewall has no annotation (empty:
	// single-cluster mode).
	DefaultSecret string
	// TokenSecret, when set, names a Secret in the firewall's namespace whose key "token" is the
	// bearer token for the workload kubeconfig (Gardener's shape: a generic kubeconfig that
	// points at a token file, and a token Secret that Gardener keeps fresh).
	TokenSecret string
	// Namespace is the monitor namespace; empty means DefaultMonitorNamespace.
	Namespace string
	Scheme    *runtime.Scheme
	// IdleTimeout stops connections no firewall used for this long; 0 means 10 minutes.
	IdleTimeout time.Duration
	// SyncTimeout bounds the first connection to a cluster; 0 means 15 seconds.
	SyncTimeout time.Duration

	once     sync.Once
	events   chan event.GenericEvent
	mu       sync.Mutex
	ctx      context.Context
	clusters map[string]*Cluster // by reference key (namespace/secret/key, or "local")
	// failures remembers a failed connection per kubeconfig, so that firewalls pointing at an
	// unreachable cluster do not each wait for a connection timeout.
	failures map[string]failure
}

type failure struct {
	err   error
	until time.Time
}

// retryAfterFailure is how long a failed connection is not tried again.
const retryAfterFailure = 30 * time.Second

func (r *Registry) init() {
	r.once.Do(func() {
		r.events = make(chan event.GenericEvent, 1024)
		r.clusters = map[string]*Cluster{}
		r.failures = map[string]failure{}
	})
}

// Source feeds the firewall controller: a monitor change in any workload cluster (an agent
// report, a roll request, a deletion) enqueues the monitor's Firewall in the seed.
func (r *Registry) Source() source.Source {
	r.init()
	return source.Channel(r.events, &handler.EnqueueRequestForObject{})
}

// Start runs until ctx ends, stopping idle connections; it implements manager.Runnable.
func (r *Registry) Start(ctx context.Context) error {
	r.init()
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
	ticker := time.NewTicker(time.Minute)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			for key, c := range r.clusters {
				c.cancel()
				delete(r.clusters, key)
			}
			r.mu.Unlock()
			return nil
		case <-ticker.C:
			r.dropIdle()
		}
	}
}

// NeedLeaderElection: monitors are written by the leader only.
func (r *Registry) NeedLeaderElection() bool { return true }

func (r *Registry) dropIdle() {
	idle := r.IdleTimeout
	if idle == 0 {
		idle = 10 * time.Minute
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, c := range r.clusters {
		c.mu.Lock()
		unused := time.Since(c.lastUsed) > idle
		c.mu.Unlock()
		if unused {
			c.cancel()
			delete(r.clusters, key)
		}
	}
	for key, f := range r.failures {
		if time.Now().After(f.until) {
			delete(r.failures, key)
		}
	}
}

// Connections returns how many workload cluster connections are open (metrics, tests).
func (r *Registry) Connections() int {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clusters)
}

// For returns the workload cluster of fw, connecting on first use. A kubeconfig that changed
// (a rotated token) replaces the old connection.
func (r *Registry) For(ctx context.Context, fw *v2.Firewall) (*Cluster, error) {
	r.init()
	refKey, cfg, err := r.resolve(ctx, fw)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	base := r.ctx
	existing := r.clusters[refKey.ref]
	r.mu.Unlock()
	if base == nil {
		return nil, &UnavailableError{Reason: ReasonUnreachable, Message: "the workload cluster registry is not started"}
	}
	if existing != nil && existing.key == refKey.full {
		existing.mu.Lock()
		existing.lastUsed = time.Now()
		existing.mu.Unlock()
		return existing, nil
	}

	r.mu.Lock()
	if f, ok := r.failures[refKey.full]; ok && time.Now().Before(f.until) {
		r.mu.Unlock()
		return nil, f.err
	}
	r.mu.Unlock()
	c, err := r.connect(base, cfg, refKey)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failures[refKey.full] = failure{err: err, until: time.Now().Add(retryAfterFailure)}
		return nil, err
	}
	delete(r.failures, refKey.full)
	if old := r.clusters[refKey.ref]; old != nil {
		if old.key == refKey.full { // a concurrent reconcile connected first
			c.cancel()
			return old, nil
		}
		old.cancel()
	}
	r.clusters[refKey.ref] = c
	return c, nil
}

type clusterKey struct {
	ref   string // which reference: stable across kubeconfig changes
	full  string // ref plus the kubeconfig's digest
	local bool
}

func (r *Registry) resolve(ctx context.Context, fw *v2.Firewall) (clusterKey, *rest.Config, error) {
	raw := fw.Annotations[v2.WorkloadKubeconfigAnnotation]
	if raw == "" {
		raw = r.DefaultSecret
	}
	if raw == "" {
		if r.Local == nil {
			return clusterKey{}, nil, &UnavailableError{Reason: ReasonKubeconfigMissing, Message: "no workload cluster kubeconfig is configured"}
		}
		return clusterKey{ref: "local", full: "local", local: true}, rest.CopyConfig(r.Local), nil
	}
	ref, err := ParseSecretRef(raw)
	if err != nil {
		return clusterKey{}, nil, &UnavailableError{Reason: ReasonKubeconfigInvalid, Message: err.Error()}
	}
	secret := &corev1.Secret{}
	if err := r.Seed.Get(ctx, client.ObjectKey{Namespace: fw.Namespace, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return clusterKey{}, nil, &UnavailableError{Reason: ReasonKubeconfigMissing,
				Message: fmt.Sprintf("workload cluster kubeconfig Secret %q does not exist (yet)", ref.Name)}
		}
		return clusterKey{}, nil, err
	}
	data, ok := secret.Data[ref.Key]
	if !ok {
		return clusterKey{}, nil, &UnavailableError{Reason: ReasonKubeconfigMissing,
			Message: fmt.Sprintf("workload cluster kubeconfig Secret %q has no key %q", ref.Name, ref.Key)}
	}
	invalid := &UnavailableError{Reason: ReasonKubeconfigInvalid,
		// The parser's messages may quote the file; keep them out of status and logs.
		Message: fmt.Sprintf("workload cluster kubeconfig in Secret %q, key %q, cannot be used", ref.Name, ref.Key)}
	kubeconfig, err := clientcmd.Load(data)
	if err != nil {
		return clusterKey{}, nil, invalid
	}
	hash := sha256.New()
	hash.Write(data)
	if r.TokenSecret != "" {
		token, err := r.token(ctx, fw.Namespace)
		if err != nil {
			return clusterKey{}, nil, err
		}
		for _, user := range kubeconfig.AuthInfos {
			user.Token, user.TokenFile = token, ""
		}
		hash.Write([]byte(token))
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kubeconfig, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return clusterKey{}, nil, invalid
	}
	digest := hash.Sum(nil)
	refName := fw.Namespace + "/" + ref.Name + "/" + ref.Key
	return clusterKey{ref: refName, full: refName + "@" + hex.EncodeToString(digest[:8])}, cfg, nil
}

func (r *Registry) token(ctx context.Context, namespace string) (string, error) {
	secret := &corev1.Secret{}
	if err := r.Seed.Get(ctx, client.ObjectKey{Namespace: namespace, Name: r.TokenSecret}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return "", &UnavailableError{Reason: ReasonKubeconfigMissing,
				Message: fmt.Sprintf("workload cluster token Secret %q does not exist (yet)", r.TokenSecret)}
		}
		return "", err
	}
	token := string(secret.Data["token"])
	if token == "" {
		return "", &UnavailableError{Reason: ReasonKubeconfigMissing,
			Message: fmt.Sprintf("workload cluster token Secret %q has no key \"token\"", r.TokenSecret)}
	}
	return token, nil
}

func (r *Registry) connect(base context.Context, cfg *rest.Config, key clusterKey) (*Cluster, error) {
	namespace := r.Namespace
	if namespace == "" {
		namespace = DefaultMonitorNamespace
	}
	cfg.Timeout = 30 * time.Second
	cl, err := cluster.New(cfg, func(o *cluster.Options) {
		o.Scheme = r.Scheme
		// Only the monitors, only in their namespace: a workload cluster may be large.
		o.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{namespace: {}}}
	})
	if err != nil {
		return nil, &UnavailableError{Reason: ReasonKubeconfigInvalid, Message: fmt.Sprintf("workload cluster client: %v", err)}
	}
	ctx, cancel := context.WithCancel(base)
	informer, err := cl.GetCache().GetInformer(ctx, &v2.FirewallMonitor{}, cache.BlockUntilSynced(false))
	if err != nil {
		cancel()
		if meta.IsNoMatchError(err) {
			return nil, &UnavailableError{Reason: ReasonUnreachable, Message: "the FirewallMonitor CRD is not installed in the workload cluster"}
		}
		return nil, &UnavailableError{Reason: ReasonUnreachable, Message: fmt.Sprintf("watching FirewallMonitors in the workload cluster: %v", err)}
	}
	if _, err := informer.AddEventHandler(r.handler(ctx)); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		if err := cl.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			logf.FromContext(base).Error(err, "workload cluster connection ended", "cluster", key.ref)
		}
	}()
	syncTimeout := r.SyncTimeout
	if syncTimeout == 0 {
		syncTimeout = 15 * time.Second
	}
	syncCtx, cancelSync := context.WithTimeout(ctx, syncTimeout)
	defer cancelSync()
	if !cl.GetCache().WaitForCacheSync(syncCtx) {
		cancel()
		return nil, &UnavailableError{Reason: ReasonUnreachable, Message: fmt.Sprintf("the workload cluster did not answer within %s", syncTimeout)}
	}
	caData := cfg.CAData
	if len(caData) == 0 && cfg.CAFile != "" {
		if caData, err = os.ReadFile(cfg.CAFile); err != nil {
			cancel()
			return nil, &UnavailableError{Reason: ReasonKubeconfigInvalid, Message: fmt.Sprintf("reading the workload cluster CA: %v", err)}
		}
	}
	return &Cluster{Client: cl.GetClient(), APIReader: cl.GetAPIReader(), Namespace: namespace, Local: key.local,
		Server: cfg.Host, CAData: caData, key: key.full, cancel: cancel, lastUsed: time.Now()}, nil
}

// handler turns monitor events into events for the seed Firewall. Only what the manager
// reads back matters: the agent's report, a roll request, a deletion. The manager's own writes
// (spec summary, machine status, conditions) are ignored, so they cause no reconcile loop.
func (r *Registry) handler(ctx context.Context) toolscache.ResourceEventHandler {
	send := func(obj any) {
		mon, ok := obj.(*v2.FirewallMonitor)
		if !ok {
			if tomb, isTomb := obj.(toolscache.DeletedFinalStateUnknown); isTomb {
				mon, ok = tomb.Obj.(*v2.FirewallMonitor)
			}
			if !ok {
				return
			}
		}
		seedNamespace := mon.Labels[v2.MonitorSeedNamespaceLabel]
		if seedNamespace == "" {
			return // not ours
		}
		fw := &v2.Firewall{}
		fw.Namespace, fw.Name = seedNamespace, mon.Name
		select {
		case r.events <- event.GenericEvent{Object: fw}:
		case <-ctx.Done():
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: send,
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*v2.FirewallMonitor)
			n, ok2 := newObj.(*v2.FirewallMonitor)
			if ok1 && ok2 && ReportOrRequestChanged(o, n) {
				send(newObj)
			}
		},
		DeleteFunc: send,
	}
}

// ReportOrRequestChanged reports whether the agent's report or the user's annotations changed.
func ReportOrRequestChanged(o, n *v2.FirewallMonitor) bool {
	if o.Annotations[v2.RollSetAnnotation] != n.Annotations[v2.RollSetAnnotation] {
		return true
	}
	oc, nc := o.ControllerStatus, n.ControllerStatus
	if oc == nil || nc == nil {
		return oc != nc
	}
	return !oc.Updated.Equal(&nc.Updated) || !oc.SeedUpdated.Equal(&nc.SeedUpdated) ||
		oc.Distance != nc.Distance || oc.ObservedGeneration != nc.ObservedGeneration ||
		oc.ControllerVersion != nc.ControllerVersion || fmt.Sprint(oc.RulesApplied) != fmt.Sprint(nc.RulesApplied)
}
