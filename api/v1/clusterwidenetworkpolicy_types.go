package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterwideNetworkPolicyNamespace is the only namespace whose policies the agent enforces.
const ClusterwideNetworkPolicyNamespace = "firewall"

// ClusterwideNetworkPolicy allows traffic into and out of a cluster at its firewall. Clusters
// are isolated by default; traffic passes when a policy or a Service of type LoadBalancer
// allows it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=cwnp,categories=palisade
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterwideNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PolicySpec   `json:"spec,omitempty"`
	Status PolicyStatus `json:"status,omitempty"`
}

// PolicySpec lists what is allowed in and out.
type PolicySpec struct {
	// Description is free text.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
	// Ingress rules allow traffic into the cluster.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Ingress []IngressRule `json:"ingress,omitempty"`
	// Egress rules allow traffic out of the cluster.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Egress []EgressRule `json:"egress,omitempty"`
}

// IngressRule allows traffic from the given sources to the given ports.
type IngressRule struct {
	// Ports to allow; OR-combined.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Ports []NetworkPolicyPort `json:"ports,omitempty"`
	// From are the allowed sources.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	From []IPBlock `json:"from,omitempty"`
}

// EgressRule allows traffic to the given destinations and ports.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.to) && size(self.to) > 0 && has(self.toFQDNs) && size(self.toFQDNs) > 0)",message="to and toFQDNs are mutually exclusive"
type EgressRule struct {
	// Ports to allow; OR-combined.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Ports []NetworkPolicyPort `json:"ports,omitempty"`
	// To are the allowed destinations.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	To []IPBlock `json:"to,omitempty"`
	// ToFQDNs are the allowed destinations by DNS name.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	ToFQDNs []FQDNSelector `json:"toFQDNs,omitempty"`
}

// IPBlock is a CIDR with optional exceptions. IPv4 and IPv6.
//
// An except entry outside the block is accepted, because upstream accepted it and existing
// manifests contain such entries; the webhook warns about it and the agent applies the overlap.
type IPBlock struct {
	// CIDR such as 10.0.0.0/8 or 2001:db8::/32.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="cidr must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32"
	CIDR string `json:"cidr"`
	// Except are CIDRs inside cidr that are not matched.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(e, isCIDR(e))",message="every except entry must be a CIDR"
	Except []string `json:"except,omitempty"`
}

// NetworkPolicyPort is a protocol and a port or port range. Without a port it matches every
// port of the protocol.
//
// +kubebuilder:validation:XValidation:rule="!has(self.endPort) || (has(self.port) && self.endPort >= self.port)",message="endPort must be set together with port and be >= port"
type NetworkPolicyPort struct {
	// Protocol is TCP (default) or UDP.
	// +optional
	// +kubebuilder:validation:Enum=TCP;UDP
	Protocol *corev1.Protocol `json:"protocol,omitempty"`
	// Port number.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
	// EndPort makes the rule a range from port to endPort, inclusive.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	EndPort *int32 `json:"endPort,omitempty"`
}

// FQDNSelector matches DNS names.
//
// +kubebuilder:validation:XValidation:rule="has(self.matchName) || has(self.matchPattern)",message="one of matchName and matchPattern must be set"
type FQDNSelector struct {
	// MatchName is an exact name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([-a-zA-Z0-9_]+[.]?)+$`
	MatchName string `json:"matchName,omitempty"`
	// MatchPattern is a name with '*' wildcards.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([-a-zA-Z0-9_*]+[.]?)+$`
	MatchPattern string `json:"matchPattern,omitempty"`
}

// PolicyDeploymentState says whether the agent enforces a policy.
type PolicyDeploymentState string

const (
	// PolicyDeployed: the policy is part of the applied ruleset.
	PolicyDeployed PolicyDeploymentState = "deployed"
	// PolicyIgnored: the policy was refused; the message says why.
	PolicyIgnored PolicyDeploymentState = "ignored"
)

// PolicyStatus is what the agent reports about a policy.
type PolicyStatus struct {
	// State is deployed or ignored.
	// +optional
	State PolicyDeploymentState `json:"state,omitempty"`
	// Message explains the state.
	// +optional
	Message string `json:"message,omitempty"`
	// ObservedGeneration is the generation the state refers to.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions of the policy.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// FQDNState maps a matchName or matchPattern to the IP sets it resolved to.
	// +optional
	FQDNState map[string][]IPSet `json:"fqdn_state,omitempty"`
}

// IPSet is a set of IPs resolved for a DNS name.
type IPSet struct {
	// +optional
	FQDN string `json:"fqdn,omitempty"`
	// +optional
	SetName string `json:"setName,omitempty"`
	// +optional
	IPExpirationTimes map[string]metav1.Time `json:"ipExpirationTimes,omitempty"`
	// Version is ip or ip6.
	// +optional
	Version string `json:"version,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterwideNetworkPolicyList is a list of ClusterwideNetworkPolicies.
type ClusterwideNetworkPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterwideNetworkPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterwideNetworkPolicy{}, &ClusterwideNetworkPolicyList{})
}
