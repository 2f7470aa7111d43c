package v2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FirewallDistance is the BGP AS-path prepend length the agent announces; a longer distance
// attracts less traffic. New sets of a rolling update start far away and move to 0 once ready.
// +kubebuilder:validation:Minimum=0
// +kubebuilder:validation:Maximum=8
type FirewallDistance uint8

const (
	FirewallShortestDistance         FirewallDistance = 0
	FirewallRollingUpdateSetDistance FirewallDistance = 3
	FirewallLongestDistance          FirewallDistance = 8
	// FirewallMaxReplicas is the most firewalls a set may have.
	FirewallMaxReplicas = 4
)

// FirewallPhase is the coarse lifecycle state of a firewall.
type FirewallPhase string

const (
	FirewallPhaseCreating FirewallPhase = "Creating"
	FirewallPhaseRunning  FirewallPhase = "Running"
	FirewallPhaseCrashing FirewallPhase = "Crashing"
	FirewallPhaseDeleting FirewallPhase = "Deleting"
)

// Firewall is one firewall machine in metal-api and the agent on it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=fw,categories=palisade
// +kubebuilder:metadata:labels="clusterctl.cluster.x-k8s.io="
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta1=v2"
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v2"
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Connected",type=string,JSONPath=`.status.conditions[?(@.type=="Connected")].status`
// +kubebuilder:printcolumn:name="Machine ID",type=string,JSONPath=`.status.machineStatus.machineID`
// +kubebuilder:printcolumn:name="Last Event",type=string,JSONPath=`.status.machineStatus.lastEvent.event`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Distance",type=integer,JSONPath=`.distance`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.controllerStatus.actualVersion`
// +kubebuilder:printcolumn:name="Spec Version",type=string,JSONPath=`.spec.controllerVersion`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Firewall struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FirewallSpec   `json:"spec"`
	Status FirewallStatus `json:"status,omitempty"`

	// Distance is the BGP distance this firewall announces; the FirewallSet controller sets it.
	// +optional
	// +kubebuilder:default=0
	Distance FirewallDistance `json:"distance"`
}

// FirewallStatus is the observed state of a Firewall.
type FirewallStatus struct {
	// ObservedGeneration is the generation this status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// MachineStatus is the machine as metal-api reports it.
	// +optional
	MachineStatus *MachineStatus `json:"machineStatus,omitempty"`
	// ControllerStatus is what the agent reported.
	// +optional
	ControllerStatus *ControllerConnection `json:"controllerStatus,omitempty"`
	// FirewallNetworks are the networks of the allocated machine.
	// +optional
	FirewallNetworks []FirewallNetwork `json:"firewallNetworks,omitempty"`
	// Conditions: Created, Ready, Provisioned, Connected, SeedConnected, Distance, UserdataReady,
	// MonitorDeployed, Paused.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Phase is Creating, Running, Crashing or Deleting.
	// +optional
	Phase FirewallPhase `json:"phase,omitempty"`
	// ShootAccess tells the agent which seed secrets give it access to the workload cluster.
	// +optional
	ShootAccess *ShootAccess `json:"shootAccess,omitempty"`
	// UserdataHash is the hash of the userdata the machine was (or will be) allocated with.
	// +optional
	UserdataHash string `json:"userdataHash,omitempty"`
	// AllocationStarted is when an allocation was sent that metal-api has not confirmed yet
	// (Palisade). It is written before the call, so that after a timeout or a restart no second
	// allocation is sent until metal-api showed no machine of this name for longer than an
	// allocation can take.
	// +optional
	AllocationStarted *metav1.Time `json:"allocationStarted,omitempty"`
}

// MachineStatus is the firewall machine as metal-api reports it.
type MachineStatus struct {
	MachineID           string      `json:"machineID"`
	AllocationTimestamp metav1.Time `json:"allocationTimestamp"`
	// Liveliness is Alive, Dead or Unknown.
	Liveliness string `json:"liveliness"`
	// CrashLoop is true when the provisioning restarted repeatedly.
	// +optional
	CrashLoop bool `json:"crashLoop,omitempty"`
	// LastEvent is the newest provisioning event.
	// +optional
	LastEvent *MachineLastEvent `json:"lastEvent,omitempty"`
	// ImageID is the fully qualified image the machine runs.
	// +optional
	ImageID string `json:"imageID,omitempty"`
}

// MachineLastEvent is one metal-api provisioning event.
type MachineLastEvent struct {
	Event     string      `json:"event"`
	Timestamp metav1.Time `json:"timestamp"`
	// +optional
	Message string `json:"message,omitempty"`
}

// ControllerConnection is what the agent last reported.
type ControllerConnection struct {
	// ActualVersion is the agent version running.
	// +optional
	ActualVersion string `json:"actualVersion,omitempty"`
	// Updated is when the agent last applied rules for the workload cluster.
	// +optional
	Updated metav1.Time `json:"lastRun,omitempty"`
	// SeedUpdated is when the agent last reconciled against the seed.
	// +optional
	SeedUpdated metav1.Time `json:"lastRunAgainstSeed,omitempty"`
	// ActualDistance is the distance the agent configured.
	// +optional
	ActualDistance FirewallDistance `json:"actualDistance,omitempty"`
	// DistanceSupported is false when the agent cannot configure a distance (no routing daemon
	// it can drive); the Distance condition is then not checked (Palisade).
	// +optional
	DistanceSupported *bool `json:"distanceSupported,omitempty"`
	// ObservedGeneration is the Firewall generation whose rules the agent applied (Palisade).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// RulesApplied is false when the agent failed to apply its last ruleset (Palisade).
	// +optional
	RulesApplied *bool `json:"rulesApplied,omitempty"`
	// Message explains a failed apply (Palisade).
	// +optional
	Message string `json:"message,omitempty"`
	// Stats are the agent's device, rule and IDS statistics, as in the FirewallMonitor
	// (Palisade; written by agents that reach the seed).
	// +optional
	Stats *FirewallStats `json:"stats,omitempty"`
	// Conditions are the agent's own conditions, e.g. RulesetInSync: whether the kernel's
	// table still holds the applied ruleset (Palisade).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// FirewallNetwork is one network of the allocated machine.
type FirewallNetwork struct {
	// +optional
	ASN *int64 `json:"asn,omitempty"`
	// +optional
	DestinationPrefixes []string `json:"destinationPrefixes,omitempty"`
	// +optional
	IPs []string `json:"ips,omitempty"`
	// +optional
	Nat *bool `json:"nat,omitempty"`
	// +optional
	NetworkID *string `json:"networkID,omitempty"`
	// +optional
	NetworkType *string `json:"networkType,omitempty"`
	// +optional
	Prefixes []string `json:"prefixes,omitempty"`
	// +optional
	Vrf *int64 `json:"vrf,omitempty"`
}

// ShootAccess names the seed secrets from which the agent builds a workload-cluster client.
type ShootAccess struct {
	// +optional
	GenericKubeconfigSecretName string `json:"genericKubeconfigSecretName,omitempty"`
	// +optional
	TokenSecretName string `json:"tokenSecretName,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +optional
	APIServerURL string `json:"apiServerURL,omitempty"`
}

// +kubebuilder:object:root=true

// FirewallList is a list of Firewalls.
type FirewallList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Firewall `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Firewall{}, &FirewallList{})
}
