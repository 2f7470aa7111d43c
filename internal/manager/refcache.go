package manager

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-fw/palisade/internal/controller/refwatch"
)

// referenceCache serves the Secrets and ConfigMaps the controllers read (userdata references,
// workload kubeconfigs) without caching the cluster's: an object is kept only once somebody read
// it, and dropped on any change a metadata watch reports (its own, and before the controllers'
// watches enqueue anything, refwatch.Config.OnChange), so the next read goes to the API server. Memory grows with the referenced objects, not with the cluster; every firewall
// reconcile no longer costs a GET per reference. Other kinds go to the fallback reader.
type referenceCache struct {
	direct   client.Reader
	fallback client.Reader

	mu      sync.Mutex
	entries map[refKey]client.Object
	// changes counts the events seen per key, so that a read that raced with a change is not
	// stored.
	changes  map[refKey]uint64
	watching bool
}

type refKey struct {
	resource        string
	namespace, name string
}

func newReferenceCache(direct, fallback client.Reader) *referenceCache {
	return &referenceCache{direct: direct, fallback: fallback, entries: map[refKey]client.Object{}, changes: map[refKey]uint64{}}
}

// Start runs the watches until ctx ends (a manager Runnable). Until they listed once, nothing
// is stored.
func (c *referenceCache) start(ctx context.Context, cfg refwatch.Config) error {
	var wg sync.WaitGroup
	for _, res := range []schema.GroupVersionResource{refwatch.Secrets, refwatch.ConfigMaps} {
		wg.Add(1)
		if err := refwatch.Run(ctx, cfg, res, func(_ refwatch.EventKind, o client.Object) {
			c.invalidate(refKey{res.Resource, o.GetNamespace(), o.GetName()})
		}, wg.Done); err != nil {
			return err
		}
	}
	go func() {
		wg.Wait()
		c.mu.Lock()
		c.watching = true
		c.mu.Unlock()
		<-ctx.Done()
		c.mu.Lock()
		c.watching = false
		c.entries = map[refKey]client.Object{}
		c.mu.Unlock()
	}()
	return nil
}

// changed is refwatch's OnChange hook: the controllers' own watches drop a changed object
// before they enqueue the reconcile that will read it.
func (c *referenceCache) changed(res schema.GroupVersionResource, o client.Object) {
	c.invalidate(refKey{res.Resource, o.GetNamespace(), o.GetName()})
}

func (c *referenceCache) invalidate(k refKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Only keys somebody read are tracked: unrelated objects leave no trace.
	if _, read := c.changes[k]; read {
		c.changes[k]++
		delete(c.entries, k)
	}
}

func keyOf(key client.ObjectKey, obj client.Object) (refKey, bool) {
	switch obj.(type) {
	case *corev1.Secret:
		return refKey{refwatch.Secrets.Resource, key.Namespace, key.Name}, true
	case *corev1.ConfigMap:
		return refKey{refwatch.ConfigMaps.Resource, key.Namespace, key.Name}, true
	}
	return refKey{}, false
}

// Get implements client.Reader.
func (c *referenceCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	k, ok := keyOf(key, obj)
	if !ok {
		return c.fallback.Get(ctx, key, obj, opts...)
	}
	c.mu.Lock()
	cached, hit := c.entries[k]
	seen, tracked := c.changes[k]
	if !tracked {
		c.changes[k] = 0
	}
	c.mu.Unlock()
	if hit {
		return copyInto(cached, obj)
	}
	if err := c.direct.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	c.mu.Lock()
	if c.watching && c.changes[k] == seen {
		c.entries[k] = obj.DeepCopyObject().(client.Object)
	}
	c.mu.Unlock()
	return nil
}

// List implements client.Reader; lists are never cached.
func (c *referenceCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	switch list.(type) {
	case *corev1.SecretList, *corev1.ConfigMapList:
		return c.direct.List(ctx, list, opts...)
	}
	return c.fallback.List(ctx, list, opts...)
}

func copyInto(from, to client.Object) error {
	switch dst := to.(type) {
	case *corev1.Secret:
		from.(*corev1.Secret).DeepCopyInto(dst)
	case *corev1.ConfigMap:
		from.(*corev1.ConfigMap).DeepCopyInto(dst)
	}
	return nil
}
