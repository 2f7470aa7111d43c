package manager

import (
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ScopeCaches sets the cache and client options Setup's controllers are written for, on the
// options a manager is created with (cmd/manager and the test harness call it):
//   - Secrets and ConfigMaps are not cached by informer: the client reads them from the API
//     server, Setup's reference cache keeps only the ones read until they change, and the
//     controllers learn of changes through metadata-only watches that keep nothing
//     (internal/controller/refwatch), so a seed's unrelated Secrets cost the manager no memory
//     (docs/benchmarks.md).
//   - With namespaces (--namespace), every informer is limited to them, which is what a
//     namespaced Role allows (docs/security.md).
//   - managedFields are dropped from every cached object.
func ScopeCaches(o *ctrl.Options, namespaces []string) {
	o.Cache.DefaultTransform = cache.TransformStripManagedFields()
	if len(namespaces) > 0 {
		o.Cache.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			o.Cache.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	if o.Client.Cache == nil {
		o.Client.Cache = &client.CacheOptions{}
	}
	o.Client.Cache.DisableFor = append(o.Client.Cache.DisableFor, &corev1.Secret{}, &corev1.ConfigMap{})
}
