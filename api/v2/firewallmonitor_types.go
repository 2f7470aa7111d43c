package v2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FirewallShootNamespace is the workload-cluster namespace holding FirewallMonitors and CWNPs.
const FirewallShootNamespace = "firewall"

// FirewallMonitor mirrors a Firewall into the workload cluster, where the agent reports its
// status and users can request a roll. It has no spec/status split, as upstream.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=fwmon,categories=palisade
// +kubebuilder:printcolumn:name="Machine ID",type=string,JSONPath=`.machineStatus.machineID`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.image`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.size`
// +kubebuilder:printcolumn:name="Last Event",type=string,JSONPath=`.machineStatus.lastEvent.event`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.controllerStatus.controllerVersion`
// +kubebuilder:printcolumn:name="Distance",type=integer,JSONPath=`.controllerStatus.distance`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FirewallMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Size string `json:"size,omitempty"`
	// +optional
	Image string `json:"image,omitempty"`
	// +optional
	Partition string `json:"partition,omitempty"`
	// +optional
	Project string `json:"project,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Networks []string `json:"networks,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=32
	RateLimits []RateLimit `json:"rateLimits,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=32
	EgressRules []EgressRuleSNAT `json:"egressRules,omitempty"`
	// +optional
	LogAcceptedConnections bool `json:"logAcceptedConnections,omitempty"`
	// MachineStatus as metal-api reports it.
	// +optional
	MachineStatus *MachineStatus `json:"machineStatus,omitempty"`
	// Conditions copied from the Firewall.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ControllerStatus is written by the agent.
	// +optional
	ControllerStatus *ControllerStatus `json:"controllerStatus,omitempty"`
}

// ControllerStatus is the agent's report in the workload cluster.
type ControllerStatus struct {
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	Stats *FirewallStats `json:"stats,omitempty"`
	// +optional
	ControllerVersion string `json:"controllerVersion,omitempty"`
	// +optional
	NftablesExporterVersion string `json:"nftablesExporterVersion,omitempty"`
	// Updated is when the agent last applied rules.
	// +optional
	Updated metav1.Time `json:"lastRun,omitempty"`
	// SeedUpdated is when the agent last reconciled against the seed.
	// +optional
	SeedUpdated metav1.Time `json:"lastRunAgainstSeed,omitempty"`
	// Distance the agent configured.
	// +optional
	Distance FirewallDistance `json:"distance,omitempty"`
	// DistanceSupported is false when the agent cannot configure distances.
	// +optional
	DistanceSupported bool `json:"distanceSupported,omitempty"`
	// ObservedGeneration is the Firewall generation whose rules were applied (Palisade).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// RulesApplied is false when the last apply failed (Palisade).
	// +optional
	RulesApplied *bool `json:"rulesApplied,omitempty"`
	// Conditions are the agent's own conditions, e.g. RulesetInSync: whether the kernel's
	// table still holds the applied ruleset (Palisade).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// FirewallStats are traffic statistics of the firewall.
type FirewallStats struct {
	// Rules are counters by action (accept, drop, other) and rule name.
	// +optional
	RuleStats RuleStatsByAction `json:"rules,omitempty"`
	// Devices are byte counters per device.
	// +optional
	DeviceStats DeviceStatsByDevice `json:"devices,omitempty"`
	// IDSStats are intrusion-detection counters per interface.
	// +optional
	IDSStats IDSStatsByDevice `json:"idsStats,omitempty"`
}

// RuleStatsByAction maps an action to rule counters by rule name.
type RuleStatsByAction map[string]RuleStats

// RuleStats maps a rule name to its counter.
type RuleStats map[string]RuleStat

// RuleStat is the counter of one rule.
type RuleStat struct {
	Counter Counter `json:"counter"`
}

// Counter counts bytes and packets.
type Counter struct {
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
}

// DeviceStatsByDevice maps a device (or "internal"/"external") to byte counters.
type DeviceStatsByDevice map[string]DeviceStat

// DeviceStat counts bytes in and out of a device.
type DeviceStat struct {
	InBytes    uint64 `json:"in"`
	OutBytes   uint64 `json:"out"`
	TotalBytes uint64 `json:"total"`
}

// IDSStatsByDevice maps an interface to IDS counters.
type IDSStatsByDevice map[string]InterfaceStat

// InterfaceStat are IDS counters of one interface.
type InterfaceStat struct {
	Drop             int `json:"drop"`
	InvalidChecksums int `json:"invalidChecksums"`
	Packets          int `json:"packets"`
}

// +kubebuilder:object:root=true

// FirewallMonitorList is a list of FirewallMonitors.
type FirewallMonitorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FirewallMonitor `json:"items"`
}

func init() {
	SchemeBuilder.Register(&FirewallMonitor{}, &FirewallMonitorList{})
}
