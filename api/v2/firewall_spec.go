package v2

// FirewallSpec describes one firewall machine and the agent running on it. It is shared by
// Firewall, FirewallSet and FirewallDeployment templates.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.userdata) && size(self.userdata) > 0 && has(self.userdataContents) && size(self.userdataContents) > 0)",message="userdata and userdataContents are mutually exclusive"
type FirewallSpec struct {
	// Size is the metal-api machine size. Changing it rolls the firewalls.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Size string `json:"size"`
	// Image is the OS image, either a shorthand (firewall-ubuntu-3.0) or fully qualified
	// (firewall-ubuntu-3.0.20240503). Changing it rolls the firewalls.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Image string `json:"image"`
	// Partition is the metal-api partition. It is immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="partition is immutable"
	Partition string `json:"partition"`
	// Project is the metal-api project. It is immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="project is immutable"
	Project string `json:"project"`
	// Networks are the metal-api network IDs the firewall is attached to (IPs are acquired
	// automatically). Changing the set of networks rolls the firewalls.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	Networks []string `json:"networks"`

	// Userdata is raw userdata (Ignition JSON) passed to the machine as is. Legacy; prefer
	// userdataContents. Mutually exclusive with userdataContents.
	// +optional
	Userdata string `json:"userdata,omitempty"`
	// UserdataContents are files the manager renders into the machine's Ignition userdata,
	// with inline content or content from a Secret or ConfigMap in the same namespace.
	// A change of the rendered content rolls the firewalls.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=path
	UserdataContents []UserdataContent `json:"userdataContents,omitempty"`

	// InitialRuleSet is the rule set metal-api applies to the firewall at allocation, before the
	// agent runs.
	// +optional
	InitialRuleSet *InitialRuleSet `json:"initialRuleSet,omitempty"`

	// SSHPublicKeys are kept in sync with the machine in place.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=16384
	SSHPublicKeys []string `json:"sshPublicKeys,omitempty"`
	// RateLimits limit the ingress traffic rate per network.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	RateLimits []RateLimit `json:"rateLimits,omitempty"`
	// InternalPrefixes are prefixes whose traffic is counted as internal.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(p, isCIDR(p))",message="every internal prefix must be a CIDR such as 10.0.0.0/8 or fd00::/8"
	InternalPrefixes []string `json:"internalPrefixes,omitempty"`
	// EgressRules select the source IPs used for SNAT per network.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	EgressRules []EgressRuleSNAT `json:"egressRules,omitempty"`
	// Interval is the agent's reconcile interval as a Go duration. Defaults to 10s.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	Interval string `json:"interval,omitempty"`
	// DryRun makes the agent render but not apply its rules.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// Ipv4RuleFile is the file the agent writes its ruleset to.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="ipv4RuleFile must be an absolute path"
	Ipv4RuleFile string `json:"ipv4RuleFile,omitempty"`
	// ControllerVersion is the agent version the firewall should run.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ControllerVersion string `json:"controllerVersion,omitempty"`
	// ControllerURL is where the agent binary of ControllerVersion is downloaded from.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self)",message="controllerURL must be an absolute URL"
	ControllerURL string `json:"controllerURL,omitempty"`
	// NftablesExporterVersion is the nftables exporter version.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	NftablesExporterVersion string `json:"nftablesExporterVersion,omitempty"`
	// NftablesExporterURL is where the nftables exporter is downloaded from.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self)",message="nftablesExporterURL must be an absolute URL"
	NftablesExporterURL string `json:"nftablesExporterURL,omitempty"`
	// LogAcceptedConnections makes the droptailer log accepted connections too.
	// +optional
	LogAcceptedConnections bool `json:"logAcceptedConnections,omitempty"`
	// DNSServerAddress is the upstream DNS server of the agent's DNS proxy.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="dnsServerAddress must be an IP address"
	DNSServerAddress string `json:"dnsServerAddress,omitempty"`
	// DNSPort is the port of the resolver at DNSServerAddress the agent's DNS proxy forwards to
	// (default 53; the partition's DNS servers give it as ip:port). It is immutable once set.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	DNSPort *uint `json:"dnsPort,omitempty"`
	// AllowedNetworks caps what the agent may open: CWNPs and services outside these CIDRs are
	// refused.
	// +optional
	AllowedNetworks AllowedNetworks `json:"allowedNetworks,omitempty"`
}

// UserdataContent is one file in the rendered userdata. Exactly one source is set: content,
// secretRef or configMapRef (the seed FirewallDeployment form), secretName (the seed
// MetalStackCluster form, which Cluster API Provider metal-stack passes on unchanged) or
// contentFrom (the form of the upstream manager's userdata-contents branch, which that provider
// compiles against). All forms render the same file for the same data.
//
// +kubebuilder:validation:XValidation:rule="[has(self.content), has(self.secretRef), has(self.configMapRef), has(self.secretName), has(self.contentFrom)].filter(x, x).size() == 1",message="exactly one of content, secretRef, configMapRef, secretName and contentFrom must be set"
type UserdataContent struct {
	// Path is the absolute path of the file on the firewall.
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/') && !self.endsWith('/') && !self.contains('/../') && !self.endsWith('/..') && !self.contains('//')",message="path must be an absolute, clean file path"
	Path string `json:"path"`
	// Content is the inline file content, used verbatim.
	// +optional
	// +kubebuilder:validation:MaxLength=262144
	Content *string `json:"content,omitempty"`
	// SecretRef takes the content from a Secret in the object's namespace.
	// +optional
	SecretRef *UserdataSecretRef `json:"secretRef,omitempty"`
	// ConfigMapRef takes the content from a ConfigMap in the object's namespace.
	// +optional
	ConfigMapRef *UserdataConfigMapRef `json:"configMapRef,omitempty"`
	// SecretName takes the content from a Secret in the object's namespace: its only key when it
	// has exactly one, otherwise the key "value" (where Cluster API keeps a kubeconfig).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName string `json:"secretName,omitempty"`
	// ContentFrom takes the content from a Secret or ConfigMap key, or from an agent kubeconfig
	// the manager generates.
	// +optional
	ContentFrom *UserdataContentFrom `json:"contentFrom,omitempty"`
}

// UserdataContentFrom names where a file's content comes from. Exactly one field is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.secretKeyRef), has(self.configMapKeyRef), has(self.firewallControllerKubeconfigSecret)].filter(x, x).size() == 1",message="exactly one of secretKeyRef, configMapKeyRef and firewallControllerKubeconfigSecret must be set"
type UserdataContentFrom struct {
	// SecretKeyRef reads a key of a Secret in the object's namespace.
	// +optional
	SecretKeyRef *UserdataKeyRef `json:"secretKeyRef,omitempty"`
	// ConfigMapKeyRef reads a key of a ConfigMap in the object's namespace.
	// +optional
	ConfigMapKeyRef *UserdataKeyRef `json:"configMapKeyRef,omitempty"`
	// FirewallControllerKubeconfigSecret makes the manager write an agent kubeconfig into this
	// Secret (created if missing), as secretRef.generateFirewallControllerKubeconfig does.
	// +optional
	FirewallControllerKubeconfigSecret *UserdataKeyRef `json:"firewallControllerKubeconfigSecret,omitempty"`
}

// UserdataKeyRef points to a key of a Secret or ConfigMap in the same namespace.
type UserdataKeyRef struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// Key in the object's data. When empty: the only key, or "value".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// DefaultUserdataKey is the key read from a referenced Secret or ConfigMap when none is given
// and the object does not hold exactly one key. For a generated agent kubeconfig it is also the
// key the kubeconfig is written to.
const DefaultUserdataKey = "value"

// UserdataSecretRef points to a key of a Secret in the same namespace.
type UserdataSecretRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// Key in the Secret's data. When empty: the only key of the Secret, or "value".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
	// GenerateFirewallControllerKubeconfig makes the manager write a kubeconfig for the agent
	// into this Secret (created if missing), with a short-lived token of least privilege.
	// +optional
	GenerateFirewallControllerKubeconfig bool `json:"generateFirewallControllerKubeconfig,omitempty"`
}

// UserdataConfigMapRef points to a key of a ConfigMap in the same namespace.
type UserdataConfigMapRef struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// Key in the ConfigMap's data. When empty: the only key of the ConfigMap, or "value".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// RateLimit limits the ingress rate of one network.
type RateLimit struct {
	// NetworkID is the metal-api network.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	NetworkID string `json:"networkID"`
	// Rate in MiB/s.
	// +kubebuilder:validation:Minimum=1
	Rate uint32 `json:"rate"`
}

// EgressRuleSNAT selects the source IPs used for SNAT towards one network.
type EgressRuleSNAT struct {
	// NetworkID is the metal-api network.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	NetworkID string `json:"networkID"`
	// IPs used as SNAT source.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(ip, isIP(ip))",message="every egress rule IP must be an IP address"
	IPs []string `json:"ips"`
}

// AllowedNetworks lists CIDRs that ingress and egress rules must stay inside.
type AllowedNetworks struct {
	// Ingress CIDRs.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(p, isCIDR(p))",message="every allowed ingress network must be a CIDR"
	Ingress []string `json:"ingress,omitempty"`
	// Egress CIDRs.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(p, isCIDR(p))",message="every allowed egress network must be a CIDR"
	Egress []string `json:"egress,omitempty"`
}

// InitialRuleSet is applied by metal-api when the firewall is allocated.
type InitialRuleSet struct {
	// Egress rules.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	Egress []InitialEgressRule `json:"egress,omitempty"`
	// Ingress rules.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	Ingress []InitialIngressRule `json:"ingress,omitempty"`
}

// NetworkProtocol is TCP or UDP.
// +kubebuilder:validation:Enum=TCP;UDP
type NetworkProtocol string

const (
	NetworkProtocolTCP NetworkProtocol = "TCP"
	NetworkProtocolUDP NetworkProtocol = "UDP"
)

// InitialEgressRule allows traffic from the cluster to the given CIDRs.
type InitialEgressRule struct {
	// Comment, letters, spaces, '_' and '-' only (a metal-api restriction).
	// +optional
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:Pattern=`^[a-zA-Z _-]*$`
	Comment string `json:"comment,omitempty"`
	// Ports to allow.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=0
	// +kubebuilder:validation:items:Maximum=65535
	Ports []int32 `json:"ports"`
	// Protocol, TCP by default.
	// +optional
	Protocol NetworkProtocol `json:"protocol,omitempty"`
	// To are destination CIDRs.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(p, isCIDR(p))",message="every destination must be a CIDR"
	To []string `json:"to"`
}

// InitialIngressRule allows traffic from the given CIDRs into the cluster.
type InitialIngressRule struct {
	// Comment, letters, spaces, '_' and '-' only (a metal-api restriction).
	// +optional
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:Pattern=`^[a-zA-Z _-]*$`
	Comment string `json:"comment,omitempty"`
	// Ports to allow.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=0
	// +kubebuilder:validation:items:Maximum=65535
	Ports []int32 `json:"ports"`
	// Protocol, TCP by default.
	// +optional
	Protocol NetworkProtocol `json:"protocol,omitempty"`
	// From are source CIDRs.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(p, isCIDR(p))",message="every source must be a CIDR"
	From []string `json:"from"`
	// To are optional destination CIDRs.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(p, isCIDR(p))",message="every destination must be a CIDR"
	To []string `json:"to,omitempty"`
}
