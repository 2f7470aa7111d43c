// Package v2 holds the firewall.metal-stack.io/v2 API: FirewallDeployment, FirewallSet, Firewall
// and FirewallMonitor. Field names and JSON keys match the upstream v2 API so that existing
// manifests are accepted unchanged; Palisade's additions are documented on their fields.
//
// +kubebuilder:object:generate=true
// +groupName=firewall.metal-stack.io
package v2

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these objects.
	GroupVersion = schema.GroupVersion{Group: "firewall.metal-stack.io", Version: "v2"}

	// SchemeBuilder registers the types of this group version with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
