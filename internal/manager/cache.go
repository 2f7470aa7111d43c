package manager

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ScopeCaches sets the cache and client options Setup's controllers are written for, on the
// options a manager is created with (cmd/manager and the test harness call it):
//   - Secrets and ConfigMaps are never cached in full: reads of the objects userdata references
//     go to the API server, and the watches that re-render userdata are metadata-only, with
//     labels and annotations dropped, so a seed's unrelated Secrets cost a few hundred bytes
//     each instead of their contents (docs/benchmarks.md).
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
	if o.Cache.ByObject == nil {
		o.Cache.ByObject = map[client.Object]cache.ByObject{}
	}
	for _, kind := range []string{"Secret", "ConfigMap"} {
		meta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: kind}}
		o.Cache.ByObject[meta] = cache.ByObject{Transform: namesOnly}
	}
	if o.Client.Cache == nil {
		o.Client.Cache = &client.CacheOptions{}
	}
	o.Client.Cache.DisableFor = append(o.Client.Cache.DisableFor, &corev1.Secret{}, &corev1.ConfigMap{})
}

// namesOnly keeps what the watches map on: namespace and name (and what the informer needs).
func namesOnly(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		DeletionTimestamp: m.DeletionTimestamp,
	}}, nil
}
