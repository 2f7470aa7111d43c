// Package model holds what the agent enforces: the raw object shapes the sources deliver
// (mirroring the JSON of ClusterwideNetworkPolicy, Service and Firewall), the typed values
// they are parsed into, and the composition that decides per object whether it is applied.
//
// Everything a user can write arrives here as a string and leaves as a typed value
// (netip.Prefix, uint16 ports, a Protocol enum) or as a refusal. The renderer only ever sees
// typed values, so no user string can reach nftables syntax.
package model

// PolicySpec mirrors the spec of a ClusterwideNetworkPolicy (metal-stack.io/v1).
type PolicySpec struct {
	Description string        `json:"description,omitempty"`
	Ingress     []IngressRule `json:"ingress,omitempty"`
	Egress      []EgressRule  `json:"egress,omitempty"`
}

// IngressRule allows traffic from the listed blocks to the cluster.
type IngressRule struct {
	Ports []PolicyPort `json:"ports,omitempty"`
	From  []IPBlock    `json:"from,omitempty"`
}

// EgressRule allows traffic from the cluster to the listed blocks.
type EgressRule struct {
	Ports   []PolicyPort   `json:"ports,omitempty"`
	To      []IPBlock      `json:"to,omitempty"`
	ToFQDNs []FQDNSelector `json:"toFQDNs,omitempty"`
}

// PolicyPort is a protocol and an optional port range. A missing port means every port of
// the protocol.
type PolicyPort struct {
	Protocol *string `json:"protocol,omitempty"`
	Port     *int32  `json:"port,omitempty"`
	EndPort  *int32  `json:"endPort,omitempty"`
}

// IPBlock is a CIDR minus the excepted CIDRs inside it.
type IPBlock struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except,omitempty"`
}

// FQDNSelector selects destinations by DNS name.
type FQDNSelector struct {
	MatchName    string `json:"matchName,omitempty"`
	MatchPattern string `json:"matchPattern,omitempty"`
}

// ServiceSpec is the part of a Kubernetes Service the firewall cares about.
type ServiceSpec struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// Type is LoadBalancer (default) or NodePort.
	Type string `json:"type,omitempty"`
	// IPs are the load-balancer IPs (spec.loadBalancerIP and status.loadBalancer.ingress).
	IPs          []string      `json:"ips,omitempty"`
	Ports        []ServicePort `json:"ports,omitempty"`
	SourceRanges []string      `json:"sourceRanges,omitempty"`
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Port     int32  `json:"port"`
	NodePort int32  `json:"nodePort,omitempty"`
}

// FirewallSpec mirrors the agent-relevant fields of a Firewall (firewall.metal-stack.io/v2)
// spec plus its status networks, which the agent needs to name interfaces.
type FirewallSpec struct {
	InternalPrefixes       []string         `json:"internalPrefixes,omitempty"`
	RateLimits             []RateLimitSpec  `json:"rateLimits,omitempty"`
	EgressRules            []EgressRuleSNAT `json:"egressRules,omitempty"`
	AllowedNetworks        AllowedNetworks  `json:"allowedNetworks,omitempty"`
	LogAcceptedConnections bool             `json:"logAcceptedConnections,omitempty"`
	DryRun                 bool             `json:"dryRun,omitempty"`
	Ipv4RuleFile           string           `json:"ipv4RuleFile,omitempty"`
	// DNSServerAddress and DNSPort (default 53) are the resolver the DNS proxy forwards to.
	DNSServerAddress string `json:"dnsServerAddress,omitempty"`
	DNSPort          *uint  `json:"dnsPort,omitempty"`
	// FirewallNetworks mirrors Firewall.status.firewallNetworks.
	FirewallNetworks []FirewallNetwork `json:"firewallNetworks,omitempty"`
	// ClusterPrefixes are the prefixes of the cluster behind the firewall (Palisade).
	// When empty they come from the private networks in FirewallNetworks, else from
	// InternalPrefixes.
	ClusterPrefixes []string `json:"clusterPrefixes,omitempty"`
}

// RateLimitSpec limits the traffic entering from one network, in MiB/s.
type RateLimitSpec struct {
	NetworkID string `json:"networkID"`
	Rate      uint32 `json:"rate"`
}

// EgressRuleSNAT selects the source IPs for traffic leaving through one network.
type EgressRuleSNAT struct {
	NetworkID string   `json:"networkID"`
	IPs       []string `json:"ips"`
}

// AllowedNetworks caps what policies and services may open.
type AllowedNetworks struct {
	Ingress []string `json:"ingress,omitempty"`
	Egress  []string `json:"egress,omitempty"`
}

// FirewallNetwork mirrors one entry of Firewall.status.firewallNetworks.
type FirewallNetwork struct {
	NetworkID   string   `json:"networkID"`
	NetworkType string   `json:"networkType,omitempty"`
	Vrf         int64    `json:"vrf,omitempty"`
	Prefixes    []string `json:"prefixes,omitempty"`
	IPs         []string `json:"ips,omitempty"`
	Nat         bool     `json:"nat,omitempty"`
}
