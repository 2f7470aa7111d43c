package metal

// Provisioning event names exactly as metal-api stores them.
const (
	EventAlive            = "Alive"
	EventCrashed          = "Crashed"
	EventPXEBooting       = "PXE Booting"
	EventPlannedReboot    = "Planned Reboot"
	EventPreparing        = "Preparing"
	EventRegistering      = "Registering"
	EventWaiting          = "Waiting"
	EventInstalling       = "Installing"
	EventBootingNewKernel = "Booting New Kernel"
	EventPhonedHome       = "Phoned Home"
	EventMachineReclaim   = "Machine Reclaim"
)

// Liveliness values of a machine. An empty liveliness means the machine
// never sent an event.
const (
	LivelinessAlive   = "Alive"
	LivelinessDead    = "Dead"
	LivelinessUnknown = "Unknown"
)

// Allocation roles.
const (
	RoleFirewall = "firewall"
	RoleMachine  = "machine"
)

// Machine state values (MachineState.Value). The empty string is the normal
// "available" state.
const (
	StateAvailable = ""
	StateLocked    = "LOCKED"
	StateReserved  = "RESERVED"
)

// Network types as reported in MachineNetwork.NetworkType.
const (
	NetworkTypePrivatePrimaryUnshared = "privateprimaryunshared"
	NetworkTypePrivatePrimaryShared   = "privateprimaryshared"
	NetworkTypePrivateSecondaryShared = "privatesecondaryshared"
	NetworkTypeExternal               = "external"
	NetworkTypeUnderlay               = "underlay"
)

// Image features.
const (
	ImageFeatureFirewall = "firewall"
	ImageFeatureMachine  = "machine"
)

// HMAC auth types: the scheme word of the Authorization header selects the
// server-side key and with it the permission level.
const (
	AuthTypeView  = "Metal-View"
	AuthTypeEdit  = "Metal-Edit"
	AuthTypeAdmin = "Metal-Admin"
)

// Well-known network labels.
const (
	LabelDefaultNetwork         = "network.metal-stack.io/default"
	LabelDefaultExternalNetwork = "network.metal-stack.io/default-external"
	LabelPartitionStorage       = "network.metal-stack.io/partition-storage"
	LabelClusterID              = "cluster.metal-stack.io/id"
)

// System tags metal-api adds to an allocated machine.
const (
	TagPrimaryASN = "machine.metal-stack.io/network.primary.asn"
	TagRack       = "machine.metal-stack.io/rack"
	TagChassis    = "machine.metal-stack.io/chassis"
)

// Operation names. The client labels its metrics with them and the
// simulator counts requests by them, so tests can compare both sides.
const (
	OpFirewallAllocate = "firewall.allocate"
	OpFirewallFind     = "firewall.find"
	OpFirewallGet      = "firewall.get"
	OpFirewallList     = "firewall.list"
	OpMachineGet       = "machine.get"
	OpMachineFind      = "machine.find"
	OpMachineUpdate    = "machine.update"
	OpMachineFree      = "machine.free"
	OpMachineReinstall = "machine.reinstall"
	OpImageGet         = "image.get"
	OpImageLatest      = "image.latest"
	OpImageFind        = "image.find"
	OpNetworkGet       = "network.get"
	OpNetworkFind      = "network.find"
	OpSizeGet          = "size.get"
	OpPartitionGet     = "partition.get"
	OpProjectGet       = "project.get"
)
