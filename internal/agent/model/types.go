package model

import (
	"fmt"
	"net/netip"
)

// Protocol is a layer-4 protocol the firewall can match ports of.
type Protocol uint8

const (
	TCP Protocol = iota + 1
	UDP
	SCTP
)

// Protocols lists every supported protocol in a stable order.
var Protocols = []Protocol{TCP, UDP, SCTP}

// String returns the nftables name of the protocol.
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case SCTP:
		return "sctp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// PortRange is an inclusive range of ports of one protocol.
type PortRange struct {
	Protocol    Protocol
	First, Last uint16
}

// Peer is a prefix minus the excepted prefixes inside it.
type Peer struct {
	Prefix netip.Prefix
	Except []netip.Prefix
}

// Rule allows traffic between the cluster and Peers on Ports. No Ports means every
// protocol and port (the CWNP API and Kubernetes NetworkPolicy: a rule without ports is not
// restricted by port).
type Rule struct {
	// Index is the rule's place in the manifest's ingress or egress list (toFQDNs rules are
	// kept apart, so it can differ from the place in Policy.Egress).
	Index int
	Peers []Peer
	Ports []PortRange
	// Everywhere marks peers the rule did not list ("every address"); allowedNetworks
	// narrows them to the allowed networks instead of refusing the policy.
	Everywhere bool
}

// AllPorts tells whether the rule matches every protocol and port.
func (r Rule) AllPorts() bool { return len(r.Ports) == 0 }

// ObjectKey names an object across sources.
type ObjectKey struct {
	Source    string
	Namespace string
	Name      string
}

func (k ObjectKey) String() string {
	if k.Namespace == "" {
		return k.Source + ":" + k.Name
	}
	return k.Source + ":" + k.Namespace + "/" + k.Name
}

// Policy is a parsed ClusterwideNetworkPolicy.
type Policy struct {
	Key     ObjectKey
	Ingress []Rule
	Egress  []Rule
	// FQDN are the egress rules by DNS name; their addresses come from the DNS proxy.
	FQDN []FQDNRule
	// Notes explain parts that are not enforced (e.g. a rule without ports); they end up in
	// the status.
	Notes []string
	// Comment replaces the generated comment of the policy's chain and counter (the
	// default egress says where it comes from).
	Comment string
}

// ServiceType is the kind of exposure of a Service.
type ServiceType uint8

const (
	LoadBalancer ServiceType = iota + 1
	NodePort
)

// Port is one exposed port of a Service.
type Port struct {
	Protocol Protocol
	Port     uint16
	NodePort uint16
}

// Service is a parsed Service of type LoadBalancer or NodePort.
type Service struct {
	Key     ObjectKey
	Type    ServiceType
	IPs     []netip.Addr
	Ports   []Port
	Sources []netip.Prefix // empty: every source
	Notes   []string
}

// RateLimit polices the traffic entering through Interface.
type RateLimit struct {
	NetworkID string
	Interface string
	MiBps     uint32
}

// SNAT rewrites the source of cluster traffic leaving through Interface to one of IPs.
type SNAT struct {
	NetworkID string
	Interface string
	IPs       []netip.Addr
}

// Firewall is the parsed firewall-wide configuration.
type Firewall struct {
	ClusterPrefixes []netip.Prefix
	// ServicePrefixes are where a load-balancer IP may lie: the cluster prefixes, the
	// prefixes of every private network (primary and secondary, i.e. DMZ) and of the
	// external networks (metal-stack allocates LoadBalancer IPs from the internet network).
	// Anything else is refused: a rule towards an address no network of the firewall holds
	// would open the firewall towards it.
	ServicePrefixes  []netip.Prefix
	InternalPrefixes []netip.Prefix
	RateLimits       []RateLimit
	SNAT             []SNAT
	// Allowed caps what policies and services may open; nil means no cap.
	Allowed     *Allowed
	LogAccepted bool
	DryRun      bool
	RuleFile    string
	// Warnings name the parts of the spec that were skipped.
	Warnings []string

	// Generation is the seed Firewall's generation this part was read from (0 for other
	// sources); reported as observedGeneration once its ruleset is applied.
	Generation int64
	// Distance is the requested BGP distance (AS-path prepend length).
	Distance uint8
	// ASN is the firewall's own AS (0 when unknown), prepended for the distance.
	ASN int64
	// DNSUpstream is the resolver of the DNS proxy from the Firewall spec; zero when unset.
	DNSUpstream DNSUpstream
	// Host is what the agent puts on the host besides the ruleset (SSH keys, binary).
	Host HostSpec
}

// Allowed is the parsed allowedNetworks. When the cap is active, an empty direction allows
// nothing in that direction.
type Allowed struct {
	Ingress []netip.Prefix
	Egress  []netip.Prefix
}

// Snapshot is everything the renderer turns into one ruleset.
type Snapshot struct {
	Firewall Firewall
	Policies []Policy
	Services []Service
}
