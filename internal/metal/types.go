package metal

import "time"

// The structs below mirror the metal-api swagger definitions named in their
// comments. JSON names and types must match metal-api.swagger.json; the
// contract test in swagger_test.go enforces that. The client converts them
// to and from metal-go's models by those names (convert.go); the simulator
// renders them.
//
// Optional request fields use omitempty so that an unset filter is absent on
// the wire: the server treats "" as a value to match, not as "no filter".

// MachineAllocationNetwork is v1.MachineAllocationNetwork.
type MachineAllocationNetwork struct {
	NetworkID string `json:"networkid"`
	// AutoAcquire nil means true on the server.
	AutoAcquire *bool `json:"autoacquire,omitempty"`
}

// DNSServer is v1.DNSServer.
type DNSServer struct {
	IP string `json:"ip"`
}

// NTPServer is v1.NTPServer.
type NTPServer struct {
	Address string `json:"address"`
}

// FirewallEgressRule is v1.FirewallEgressRule.
type FirewallEgressRule struct {
	Protocol string   `json:"protocol,omitempty"`
	Ports    []int32  `json:"ports"`
	To       []string `json:"to"`
	Comment  string   `json:"comment,omitempty"`
}

// FirewallIngressRule is v1.FirewallIngressRule.
type FirewallIngressRule struct {
	Protocol string   `json:"protocol,omitempty"`
	Ports    []int32  `json:"ports"`
	From     []string `json:"from"`
	To       []string `json:"to,omitempty"`
	Comment  string   `json:"comment,omitempty"`
}

// FirewallRules is v1.FirewallRules.
type FirewallRules struct {
	Egress  []FirewallEgressRule  `json:"egress,omitempty"`
	Ingress []FirewallIngressRule `json:"ingress,omitempty"`
}

// FirewallCreateRequest is v1.FirewallCreateRequest (POST /v1/firewall/allocate).
type FirewallCreateRequest struct {
	UUID               string                     `json:"uuid,omitempty"`
	Name               string                     `json:"name,omitempty"`
	Description        string                     `json:"description,omitempty"`
	Hostname           string                     `json:"hostname,omitempty"`
	ProjectID          string                     `json:"projectid"`
	PartitionID        string                     `json:"partitionid"`
	SizeID             string                     `json:"sizeid"`
	ImageID            string                     `json:"imageid"`
	SSHPubKeys         []string                   `json:"ssh_pub_keys"`
	UserData           string                     `json:"user_data,omitempty"`
	Tags               []string                   `json:"tags,omitempty"`
	Networks           []MachineAllocationNetwork `json:"networks"`
	IPs                []string                   `json:"ips,omitempty"`
	PlacementTags      []string                   `json:"placement_tags,omitempty"`
	FilesystemLayoutID string                     `json:"filesystemlayoutid,omitempty"`
	DNSServers         []DNSServer                `json:"dns_servers,omitempty"`
	NTPServers         []NTPServer                `json:"ntp_servers,omitempty"`
	FirewallRules      *FirewallRules             `json:"firewall_rules,omitempty"`
}

// MachineFindRequest is v1.MachineFindRequest (POST /v1/machine/find). All
// set fields are combined with AND. Hardware, NIC, IPMI and FRU filters are
// left out on purpose: a firewall manager never needs them.
type MachineFindRequest struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name,omitempty"`
	PartitionID string `json:"partition_id,omitempty"`
	SizeID      string `json:"sizeid,omitempty"`
	RackID      string `json:"rackid,omitempty"`
	// Tags must all be present on a machine for it to match.
	Tags []string `json:"tags,omitempty"`

	AllocationName      string `json:"allocation_name,omitempty"`
	AllocationProject   string `json:"allocation_project,omitempty"`
	AllocationHostname  string `json:"allocation_hostname,omitempty"`
	AllocationImageID   string `json:"allocation_image_id,omitempty"`
	AllocationRole      string `json:"allocation_role,omitempty"`
	AllocationSucceeded *bool  `json:"allocation_succeeded,omitempty"`

	NetworkIDs                 []string `json:"network_ids,omitempty"`
	NetworkPrefixes            []string `json:"network_prefixes,omitempty"`
	NetworkIPs                 []string `json:"network_ips,omitempty"`
	NetworkDestinationPrefixes []string `json:"network_destination_prefixes,omitempty"`
	NetworkVRFs                []int64  `json:"network_vrfs,omitempty"`
	NetworkASNs                []int64  `json:"network_asns,omitempty"`

	StateValue string `json:"state_value,omitempty"`
}

// FirewallFindRequest is v1.FirewallFindRequest (POST /v1/firewall/find). It
// has the same fields as MachineFindRequest; the server forces
// allocation_role=firewall.
type FirewallFindRequest MachineFindRequest

// MachineUpdateRequest is v1.MachineUpdateRequest (POST /v1/machine, admin).
// Non-empty Tags replace the user tags; non-empty SSHPubKeys replace the keys.
type MachineUpdateRequest struct {
	ID string `json:"id"`
	// Description is required in swagger but optional on the server; nil
	// leaves it unchanged.
	Description *string  `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	SSHPubKeys  []string `json:"ssh_pub_keys,omitempty"`
}

// MachineReinstallRequest is v1.MachineReinstallRequest.
type MachineReinstallRequest struct {
	ID          string `json:"id"`
	ImageID     string `json:"imageid"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
}

// ImageFindRequest is v1.ImageFindRequest.
type ImageFindRequest struct {
	ID             string   `json:"id,omitempty"`
	Name           string   `json:"name,omitempty"`
	Features       []string `json:"features,omitempty"`
	OS             string   `json:"os,omitempty"`
	Version        string   `json:"version,omitempty"`
	Classification string   `json:"classification,omitempty"`
}

// NetworkFindRequest is v1.NetworkFindRequest.
type NetworkFindRequest struct {
	ID                  string            `json:"id,omitempty"`
	Name                string            `json:"name,omitempty"`
	PartitionID         string            `json:"partitionid,omitempty"`
	ProjectID           string            `json:"projectid,omitempty"`
	ParentNetworkID     string            `json:"parentnetworkid,omitempty"`
	VRF                 *int64            `json:"vrf,omitempty"`
	Prefixes            []string          `json:"prefixes,omitempty"`
	DestinationPrefixes []string          `json:"destinationprefixes,omitempty"`
	NAT                 *bool             `json:"nat,omitempty"`
	PrivateSuper        *bool             `json:"privatesuper,omitempty"`
	Underlay            *bool             `json:"underlay,omitempty"`
	Labels              map[string]string `json:"labels,omitempty"`
	AddressFamily       string            `json:"addressfamily,omitempty"`
}

// MachineResponse is v1.MachineResponse.
type MachineResponse struct {
	ID          string                          `json:"id"`
	Name        string                          `json:"name,omitempty"`
	Description string                          `json:"description,omitempty"`
	Created     time.Time                       `json:"created,omitzero"`
	Changed     time.Time                       `json:"changed,omitzero"`
	RackID      string                          `json:"rackid,omitempty"`
	Partition   *PartitionResponse              `json:"partition,omitempty"`
	Size        *SizeResponse                   `json:"size,omitempty"`
	Hardware    MachineHardware                 `json:"hardware"`
	BIOS        MachineBIOS                     `json:"bios"`
	State       MachineState                    `json:"state"`
	LEDState    ChassisIdentifyLEDState         `json:"ledstate"`
	Liveliness  string                          `json:"liveliness"`
	Tags        []string                        `json:"tags"`
	Events      MachineRecentProvisioningEvents `json:"events"`
	// Allocation is nil when the machine is free.
	Allocation *MachineAllocation `json:"allocation,omitempty"`
}

// FirewallResponse is v1.FirewallResponse, which has exactly the JSON of a
// MachineResponse.
type FirewallResponse = MachineResponse

// MachineHardware is v1.MachineHardware.
type MachineHardware struct {
	Memory   int64                `json:"memory"`
	CPUCores int32                `json:"cpu_cores"`
	CPUs     []MetalCPU           `json:"cpus,omitempty"`
	GPUs     []MetalGPU           `json:"gpus,omitempty"`
	Disks    []MachineBlockDevice `json:"disks"`
	Nics     []MachineNic         `json:"nics"`
}

// MetalCPU is v1.MetalCPU.
type MetalCPU struct {
	Vendor  string `json:"vendor"`
	Model   string `json:"model"`
	Cores   int64  `json:"cores"`
	Threads int64  `json:"threads"`
}

// MetalGPU is v1.MetalGPU.
type MetalGPU struct {
	Vendor string `json:"vendor"`
	Model  string `json:"model"`
}

// MachineBlockDevice is v1.MachineBlockDevice.
type MachineBlockDevice struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// MachineNic is v1.MachineNic.
type MachineNic struct {
	Name       string       `json:"name"`
	MAC        string       `json:"mac"`
	Identifier string       `json:"identifier"`
	Neighbors  []MachineNic `json:"neighbors"`
}

// MachineBIOS is v1.MachineBIOS.
type MachineBIOS struct {
	Vendor  string `json:"vendor"`
	Version string `json:"version"`
	Date    string `json:"date"`
}

// MachineState is v1.MachineState.
type MachineState struct {
	Value              string `json:"value"`
	Description        string `json:"description"`
	Issuer             string `json:"issuer,omitempty"`
	MetalHammerVersion string `json:"metal_hammer_version"`
}

// ChassisIdentifyLEDState is v1.ChassisIdentifyLEDState.
type ChassisIdentifyLEDState struct {
	Value       string `json:"value"`
	Description string `json:"description"`
}

// MachineRecentProvisioningEvents is v1.MachineRecentProvisioningEvents.
type MachineRecentProvisioningEvents struct {
	// Log is newest first.
	Log                  []MachineProvisioningEvent `json:"log"`
	LastEventTime        time.Time                  `json:"last_event_time,omitzero"`
	LastErrorEvent       *MachineProvisioningEvent  `json:"last_error_event,omitempty"`
	CrashLoop            bool                       `json:"crash_loop"`
	FailedMachineReclaim bool                       `json:"failed_machine_reclaim"`
}

// MachineProvisioningEvent is v1.MachineProvisioningEvent.
type MachineProvisioningEvent struct {
	Event   string    `json:"event"`
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time,omitzero"`
}

// MachineAllocation is v1.MachineAllocation.
type MachineAllocation struct {
	Created        time.Time        `json:"created"`
	Creator        string           `json:"creator"`
	Name           string           `json:"name"`
	Hostname       string           `json:"hostname"`
	Description    string           `json:"description,omitempty"`
	Project        string           `json:"project"`
	Image          *ImageResponse   `json:"image,omitempty"`
	Networks       []MachineNetwork `json:"networks"`
	SSHPubKeys     []string         `json:"ssh_pub_keys"`
	UserData       string           `json:"user_data,omitempty"`
	Succeeded      bool             `json:"succeeded"`
	Reinstall      bool             `json:"reinstall"`
	Role           string           `json:"role"`
	AllocationUUID string           `json:"allocationuuid"`
	BootInfo       *BootInfo        `json:"boot_info,omitempty"`
	FirewallRules  *FirewallRules   `json:"firewall_rules,omitempty"`
	DNSServers     []DNSServer      `json:"dns_servers,omitempty"`
	NTPServers     []NTPServer      `json:"ntp_servers,omitempty"`
	VPN            *MachineVPN      `json:"vpn,omitempty"`
}

// MachineNetwork is v1.MachineNetwork, a network as attached to an allocation.
type MachineNetwork struct {
	NetworkID           string   `json:"networkid"`
	Prefixes            []string `json:"prefixes"`
	IPs                 []string `json:"ips"`
	DestinationPrefixes []string `json:"destinationprefixes"`
	VRF                 int64    `json:"vrf"`
	ASN                 int64    `json:"asn"`
	NAT                 bool     `json:"nat"`
	Private             bool     `json:"private"`
	Underlay            bool     `json:"underlay"`
	NetworkType         string   `json:"networktype"`
	NetworkTypeV2       string   `json:"networktypev2"`
	NATTypeV2           string   `json:"nattypev2"`
	ProjectID           string   `json:"projectid"`
}

// BootInfo is v1.BootInfo.
type BootInfo struct {
	ImageID      string `json:"image_id"`
	PrimaryDisk  string `json:"primary_disk"`
	OSPartition  string `json:"os_partition"`
	Initrd       string `json:"initrd"`
	Cmdline      string `json:"cmdline"`
	Kernel       string `json:"kernel"`
	BootloaderID string `json:"bootloaderid"`
}

// MachineVPN is v1.MachineVPN.
type MachineVPN struct {
	Address   string `json:"address"`
	AuthKey   string `json:"auth_key"`
	Connected bool   `json:"connected"`
}

// ImageResponse is v1.ImageResponse. Note the camelCase expirationDate.
type ImageResponse struct {
	ID             string    `json:"id"`
	Name           string    `json:"name,omitempty"`
	Description    string    `json:"description,omitempty"`
	URL            string    `json:"url,omitempty"`
	Features       []string  `json:"features,omitempty"`
	Classification string    `json:"classification,omitempty"`
	ExpirationDate time.Time `json:"expirationDate"`
	Created        time.Time `json:"created,omitzero"`
	Changed        time.Time `json:"changed,omitzero"`
	UsedBy         []string  `json:"usedby,omitempty"`
}

// NetworkResponse is v1.NetworkResponse.
type NetworkResponse struct {
	ID                         string             `json:"id"`
	Name                       string             `json:"name,omitempty"`
	Description                string             `json:"description,omitempty"`
	PartitionID                string             `json:"partitionid,omitempty"`
	ProjectID                  string             `json:"projectid,omitempty"`
	ParentNetworkID            string             `json:"parentnetworkid,omitempty"`
	Prefixes                   []string           `json:"prefixes"`
	DestinationPrefixes        []string           `json:"destinationprefixes"`
	NAT                        bool               `json:"nat"`
	PrivateSuper               bool               `json:"privatesuper"`
	Underlay                   bool               `json:"underlay"`
	Shared                     bool               `json:"shared,omitempty"`
	VRF                        int64              `json:"vrf,omitempty"`
	VRFShared                  bool               `json:"vrfshared,omitempty"`
	Labels                     map[string]string  `json:"labels,omitempty"`
	AdditionalAnnouncableCIDRs []string           `json:"additionalAnnouncableCIDRs,omitempty"`
	DefaultChildPrefixLength   map[string]int64   `json:"defaultchildprefixlength,omitempty"`
	Usage                      NetworkUsage       `json:"usage"`
	Consumption                NetworkConsumption `json:"consumption"`
	NetworkType                string             `json:"networktype"`
	NATType                    string             `json:"nattype"`
	Created                    time.Time          `json:"created,omitzero"`
	Changed                    time.Time          `json:"changed,omitzero"`
}

// NetworkUsage is v1.NetworkUsage.
type NetworkUsage struct {
	AvailableIPs      int64 `json:"available_ips"`
	UsedIPs           int64 `json:"used_ips"`
	AvailablePrefixes int64 `json:"available_prefixes"`
	UsedPrefixes      int64 `json:"used_prefixes"`
}

// NetworkConsumption is v1.NetworkConsumption.
type NetworkConsumption struct {
	IPv4 *NetworkUsage `json:"ipv4,omitempty"`
	IPv6 *NetworkUsage `json:"ipv6,omitempty"`
}

// SizeResponse is v1.SizeResponse.
type SizeResponse struct {
	ID          string            `json:"id"`
	Name        string            `json:"name,omitempty"`
	Description string            `json:"description,omitempty"`
	Constraints []SizeConstraint  `json:"constraints"`
	Labels      map[string]string `json:"labels"`
	Created     time.Time         `json:"created,omitzero"`
	Changed     time.Time         `json:"changed,omitzero"`
}

// SizeConstraint is v1.SizeConstraint.
type SizeConstraint struct {
	Type       string `json:"type"`
	Min        int64  `json:"min,omitempty"`
	Max        int64  `json:"max,omitempty"`
	Identifier string `json:"identifier,omitempty"`
}

// PartitionResponse is v1.PartitionResponse.
type PartitionResponse struct {
	ID                 string                     `json:"id"`
	Name               string                     `json:"name,omitempty"`
	Description        string                     `json:"description,omitempty"`
	BootConfig         PartitionBootConfiguration `json:"bootconfig"`
	MgmtServiceAddress string                     `json:"mgmtserviceaddress,omitempty"`
	Labels             map[string]string          `json:"labels,omitempty"`
	DNSServers         []DNSServer                `json:"dns_servers,omitempty"`
	NTPServers         []NTPServer                `json:"ntp_servers,omitempty"`
	Created            time.Time                  `json:"created,omitzero"`
	Changed            time.Time                  `json:"changed,omitzero"`
}

// PartitionBootConfiguration is v1.PartitionBootConfiguration.
type PartitionBootConfiguration struct {
	ImageURL    string `json:"imageurl,omitempty"`
	KernelURL   string `json:"kernelurl,omitempty"`
	CommandLine string `json:"commandline,omitempty"`
}

// ProjectResponse is v1.ProjectResponse. The project id is Meta.ID.
type ProjectResponse struct {
	Meta        *Meta     `json:"meta,omitempty"`
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	TenantID    string    `json:"tenant_id,omitempty"`
	Quotas      *QuotaSet `json:"quotas,omitempty"`
}

// Meta is v1.Meta.
type Meta struct {
	ID          string            `json:"id,omitempty"`
	Kind        string            `json:"kind,omitempty"`
	APIVersion  string            `json:"apiversion,omitempty"`
	Version     int64             `json:"version,omitempty"`
	CreatedTime time.Time         `json:"created_time,omitzero"`
	UpdatedTime time.Time         `json:"updated_time,omitzero"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      []string          `json:"labels,omitempty"`
}

// QuotaSet is v1.QuotaSet.
type QuotaSet struct {
	Cluster *Quota `json:"cluster,omitempty"`
	Machine *Quota `json:"machine,omitempty"`
	IP      *Quota `json:"ip,omitempty"`
	Project *Quota `json:"project,omitempty"`
}

// Quota is v1.Quota. Nil Quota means unlimited.
type Quota struct {
	Quota *int32 `json:"quota,omitempty"`
	Used  *int32 `json:"used,omitempty"`
}
