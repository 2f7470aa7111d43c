// Package v1 holds the metal-stack.io/v1 API: ClusterwideNetworkPolicy, compatible with the
// upstream firewall-controller's API, extended to IPv6 and port-less protocol rules.
//
// +kubebuilder:object:generate=true
// +groupName=metal-stack.io
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these objects.
	GroupVersion = schema.GroupVersion{Group: "metal-stack.io", Version: "v1"}

	// SchemeBuilder registers the types of this group version with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
