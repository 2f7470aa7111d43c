package v2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FirewallUpdateStrategy says how a FirewallDeployment replaces firewalls.
// +kubebuilder:validation:Enum=RollingUpdate;Recreate
type FirewallUpdateStrategy string

const (
	// StrategyRollingUpdate creates the new firewalls first and frees the old ones once the new
	// ones are ready: no traffic gap, but machines for both sets are needed for a while.
	StrategyRollingUpdate FirewallUpdateStrategy = "RollingUpdate"
	// StrategyRecreate frees the old firewalls first: a traffic gap, but no extra machines.
	StrategyRecreate FirewallUpdateStrategy = "Recreate"
)

// FirewallDeployment keeps a set of firewalls in its desired state and rolls them on change,
// like a Deployment.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=fwdeploy,categories=palisade
// +kubebuilder:metadata:labels="clusterctl.cluster.x-k8s.io="
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta1=v2"
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v2"
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.readyReplicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Up-to-date",type=integer,JSONPath=`.status.updatedReplicas`
// +kubebuilder:printcolumn:name="Up-to-date-ready",type=integer,JSONPath=`.status.updatedReadyReplicas`,priority=1
// +kubebuilder:printcolumn:name="Progressing",type=integer,JSONPath=`.status.progressingReplicas`
// +kubebuilder:printcolumn:name="Unhealthy",type=integer,JSONPath=`.status.unhealthyReplicas`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.template.spec.image`
// +kubebuilder:printcolumn:name="Strategy",type=string,JSONPath=`.spec.strategy`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FirewallDeployment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec FirewallDeploymentSpec `json:"spec"`
	// Status is the observed state. It defaults to {} so that its counts read 0, not blank in
	// the printer columns, before a controller first writes them.
	// +kubebuilder:default={}
	Status FirewallDeploymentStatus `json:"status,omitempty"`
}

// FirewallDeploymentSpec is the desired state of a FirewallDeployment.
//
// The selector must match the template labels; the webhook checks it (CEL cannot cost
// the unbounded label map of the embedded metadata).
type FirewallDeploymentSpec struct {
	// Strategy is RollingUpdate (default) or Recreate.
	// +optional
	// +kubebuilder:default=RollingUpdate
	Strategy FirewallUpdateStrategy `json:"strategy,omitempty"`
	// Replicas is the number of firewalls, 0 to 4.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4
	Replicas int `json:"replicas"`
	// AutoUpdate configures automatic OS image updates in the maintenance window.
	// +optional
	AutoUpdate FirewallAutoUpdate `json:"autoUpdate"`
	// Selector selects the sets of this deployment; defaults to the template labels.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="selector is immutable"
	Selector map[string]string `json:"selector,omitempty"`
	// Template the firewalls are created from.
	Template FirewallTemplateSpec `json:"template"`
	// RevisionHistoryLimit is how many old, scaled-down sets are kept (Palisade). Default 0:
	// old sets are deleted once the rollout is done, as upstream does.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
	// ProgressDeadlineSeconds after which a rollout that made no progress is reported as
	// Progressing=False ProgressDeadlineExceeded (Palisade). Defaults to the manager's flag.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`
}

// FirewallAutoUpdate configures automatic updates.
type FirewallAutoUpdate struct {
	// MachineImage rolls to the newest image of the same OS and minor version.
	// +optional
	MachineImage bool `json:"machineImage"`
}

// FirewallDeploymentStatus is the observed state of a FirewallDeployment.
type FirewallDeploymentStatus struct {
	// ObservedGeneration is the generation this status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// TargetReplicas of the latest set.
	// +optional
	// +kubebuilder:default=0
	TargetReplicas int `json:"targetReplicas"`
	// ProgressingReplicas of the latest set.
	// +optional
	// +kubebuilder:default=0
	ProgressingReplicas int `json:"progressingReplicas"`
	// ReadyReplicas are ready firewalls across all sets of the deployment, the old ones of a
	// rolling update included, as a Deployment counts the pods of all its ReplicaSets.
	// +optional
	// +kubebuilder:default=0
	ReadyReplicas int `json:"readyReplicas"`
	// UnhealthyReplicas of the latest set.
	// +optional
	// +kubebuilder:default=0
	UnhealthyReplicas int `json:"unhealthyReplicas"`
	// UpdatedReplicas are firewalls of the latest set (Palisade).
	// +optional
	// +kubebuilder:default=0
	UpdatedReplicas int `json:"updatedReplicas"`
	// UpdatedReadyReplicas are ready firewalls of the latest set (Palisade): the rollout is done
	// when they reach spec.replicas and no old set holds a firewall.
	// +optional
	// +kubebuilder:default=0
	UpdatedReadyReplicas int `json:"updatedReadyReplicas"`
	// AvailableReplicas are ready firewalls across all sets (Palisade); the same count as
	// ReadyReplicas, as Palisade has no minReadySeconds.
	// +optional
	// +kubebuilder:default=0
	AvailableReplicas int `json:"availableReplicas"`
	// ObservedRevision is the revision of the latest set.
	// +optional
	ObservedRevision int `json:"observedRevision"`
	// Selector is the label selector in string form, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`
	// Conditions: Available, Progressing, FirewallsCreated, UserdataReady, RBACProvisioned,
	// Maintained, Paused.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true

// FirewallDeploymentList is a list of FirewallDeployments.
type FirewallDeploymentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FirewallDeployment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&FirewallDeployment{}, &FirewallDeploymentList{})
}
