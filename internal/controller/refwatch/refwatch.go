// Package refwatch tells the controllers when a Secret or ConfigMap changes without holding
// any of them: a metadata-only watch (names, never data) whose events go straight to the
// controller's map function, with no informer cache behind it. A seed's thousands of unrelated
// Secrets therefore cost the manager no memory (docs/benchmarks.md); the objects userdata
// references are read directly from the API server when they are needed.
package refwatch

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Resources watched by this package.
var (
	Secrets    = corev1.SchemeGroupVersion.WithResource("secrets")
	ConfigMaps = corev1.SchemeGroupVersion.WithResource("configmaps")
)

// Config says what a Source watches.
type Config struct {
	// Rest is the connection (the manager's).
	Rest *rest.Config
	// Namespaces limits the watch; empty means all namespaces.
	Namespaces []string
	// OnChange, when set, is called for every event before the controller's handler: the
	// manager drops its copy of a changed object there, so the reconcile the event triggers
	// never reads a stale one.
	OnChange func(resource schema.GroupVersionResource, obj client.Object)
}

// Source returns a controller source that calls h for every change of a resource (Secrets or
// ConfigMaps) as metadata only. After a relist (the first list, or a watch that expired) every
// object is passed on once as a generic event, so that a change missed meanwhile is not lost.
func Source(cfg Config, resource schema.GroupVersionResource, h handler.EventHandler) source.Source {
	return &watchSource{cfg: cfg, resource: resource, handler: h}
}

type watchSource struct {
	cfg      Config
	resource schema.GroupVersionResource
	handler  handler.EventHandler
	synced   sync.WaitGroup
}

func (s *watchSource) Start(ctx context.Context, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	s.synced.Add(1)
	return Run(ctx, s.cfg, s.resource, func(kind EventKind, o client.Object) {
		if s.cfg.OnChange != nil {
			s.cfg.OnChange(s.resource, o)
		}
		switch kind {
		case Added:
			s.handler.Create(ctx, event.CreateEvent{Object: o}, queue)
		case Updated:
			s.handler.Update(ctx, event.UpdateEvent{ObjectOld: o, ObjectNew: o}, queue)
		case Deleted:
			s.handler.Delete(ctx, event.DeleteEvent{Object: o}, queue)
		case Listed:
			s.handler.Generic(ctx, event.GenericEvent{Object: o}, queue)
		}
	}, s.synced.Done)
}

// EventKind says what happened to an object.
type EventKind int

// The event kinds; Listed is an object of a (re)list, which may have changed unseen.
const (
	Added EventKind = iota
	Updated
	Deleted
	Listed
)

// Run watches resource as metadata and calls notify for every event until ctx ends; it
// returns at once. synced is called once every namespace's first list went through.
func Run(ctx context.Context, cfg Config, resource schema.GroupVersionResource, notify func(EventKind, client.Object), synced func()) error {
	mc, err := metadata.NewForConfig(cfg.Rest)
	if err != nil {
		return err
	}
	namespaces := cfg.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var pending sync.WaitGroup
	for _, ns := range namespaces {
		api := mc.Resource(resource).Namespace(ns)
		lw := &toolscache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				return api.List(ctx, opts)
			},
			WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
				return api.Watch(ctx, opts)
			},
		}
		pending.Add(1)
		st := &forwardingStore{notify: notify, onFirstList: pending.Done}
		r := toolscache.NewReflectorWithOptions(lw, &metav1.PartialObjectMetadata{}, st, toolscache.ReflectorOptions{
			Name: "palisade-refwatch-" + resource.Resource + "-" + ns,
		})
		go func() {
			r.RunWithContext(ctx)
			logf.FromContext(ctx).V(1).Info("Reference watch stopped", "resource", resource.Resource, "namespace", ns)
		}()
	}
	go func() {
		pending.Wait()
		if synced != nil {
			synced()
		}
	}()
	return nil
}

// WaitForSync waits until every namespace's first list went through.
func (s *watchSource) WaitForSync(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.synced.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *watchSource) String() string { return "refwatch/" + s.resource.Resource }

// forwardingStore is the reflector's store: it keeps nothing and turns every call into a
// notification.
type forwardingStore struct {
	notify      func(EventKind, client.Object)
	once        sync.Once
	onFirstList func()
}

func object(obj any) (client.Object, bool) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	o, ok := obj.(*metav1.PartialObjectMetadata)
	return o, ok
}

func (f *forwardingStore) forward(kind EventKind, obj any) error {
	if o, ok := object(obj); ok {
		f.notify(kind, o)
	}
	return nil
}

func (f *forwardingStore) Add(obj any) error    { return f.forward(Added, obj) }
func (f *forwardingStore) Update(obj any) error { return f.forward(Updated, obj) }
func (f *forwardingStore) Delete(obj any) error { return f.forward(Deleted, obj) }

func (f *forwardingStore) Replace(items []any, _ string) error {
	for _, item := range items {
		_ = f.forward(Listed, item)
	}
	f.once.Do(f.onFirstList)
	return nil
}

func (f *forwardingStore) Resync() error { return nil }
