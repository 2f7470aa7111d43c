package v2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FirewallTemplateSpec is the template firewalls are created from.
type FirewallTemplateSpec struct {
	// Metadata of the created firewalls (labels and annotations).
	// +optional
	ObjectMeta metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec of the created firewalls.
	Spec FirewallSpec `json:"spec"`
}

// FirewallSet keeps a number of identical firewalls running, like a ReplicaSet.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=fwset,categories=palisade
// +kubebuilder:metadata:labels="clusterctl.cluster.x-k8s.io="
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta1=v2"
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v2"
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.readyReplicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Progressing",type=integer,JSONPath=`.status.progressingReplicas`
// +kubebuilder:printcolumn:name="Unhealthy",type=integer,JSONPath=`.status.unhealthyReplicas`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.template.spec.image`
// +kubebuilder:printcolumn:name="Distance",type=integer,JSONPath=`.spec.distance`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.metadata.annotations.firewall\.metal-stack\.io/revision`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FirewallSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec FirewallSetSpec `json:"spec"`
	// Status is the observed state. It defaults to {} so that its counts read 0, not blank in
	// the printer columns, before a controller first writes them.
	// +kubebuilder:default={}
	Status FirewallSetStatus `json:"status,omitempty"`
}

// FirewallSetSpec is the desired state of a FirewallSet.
//
// The selector must match the template labels; the webhook checks it (CEL cannot cost
// the unbounded label map of the embedded metadata).
type FirewallSetSpec struct {
	// Replicas is the number of firewalls, 0 to 4.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4
	Replicas int `json:"replicas"`
	// Selector selects the firewalls of this set; defaults to the template labels.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="selector is immutable"
	Selector map[string]string `json:"selector,omitempty"`
	// Template the firewalls are created from.
	Template FirewallTemplateSpec `json:"template"`
	// Distance of the most important firewall; others get +1 and +2.
	// +optional
	// +kubebuilder:default=0
	Distance FirewallDistance `json:"distance"`
}

// FirewallSetStatus is the observed state of a FirewallSet.
type FirewallSetStatus struct {
	// ObservedGeneration is the generation this status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// TargetReplicas is the desired number of firewalls.
	// +optional
	// +kubebuilder:default=0
	TargetReplicas int `json:"targetReplicas"`
	// ProgressingReplicas are firewalls being created.
	// +optional
	// +kubebuilder:default=0
	ProgressingReplicas int `json:"progressingReplicas"`
	// ReadyReplicas are firewalls ready to carry traffic.
	// +optional
	// +kubebuilder:default=0
	ReadyReplicas int `json:"readyReplicas"`
	// UnhealthyReplicas are firewalls that failed or timed out.
	// +optional
	// +kubebuilder:default=0
	UnhealthyReplicas int `json:"unhealthyReplicas"`
	// ObservedRevision is the set's revision.
	// +optional
	ObservedRevision int `json:"observedRevision"`
	// Selector is the label selector in string form, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`
	// Conditions: Ready, FirewallsCreated, Paused.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true

// FirewallSetList is a list of FirewallSets.
type FirewallSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FirewallSet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&FirewallSet{}, &FirewallSetList{})
}
