package metalsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/palisade-fw/palisade/internal/metal"
)

// Names of the built-in fleet returned by DefaultConfig.
const (
	DefaultPartition       = "partition-a"
	DefaultSize            = "n1-medium-x86"
	DefaultImage           = "firewall-ubuntu-3.0.20240503"
	DefaultImageShorthand  = "firewall-ubuntu-3.0"
	DefaultMachineImage    = "ubuntu-24.4.20240601"
	DefaultProject         = "project-a"
	DefaultOtherProject    = "project-b"
	DefaultExternalNetwork = "internet"
	DefaultPrivateNetwork  = "tenant-network-1"
	DefaultOtherPrivate    = "tenant-network-2"
	DefaultDMZNetwork      = "dmz-network"
	DefaultSuperNetwork    = "tenant-super-network-partition-a"
	DefaultUnderlayNetwork = "underlay-partition-a"
	DefaultPoolSize        = 20
)

// Config describes the simulated fleet. It loads from YAML (see
// config/samples/metal-sim.yaml); durations are strings such as "2s".
type Config struct {
	// BasePath is the API prefix, "/" (default) or e.g. "/metal/".
	BasePath string `json:"basePath,omitempty"`
	// HMACKeys maps an auth type (Metal-View, Metal-Edit, Metal-Admin) to
	// its shared key. A type without a key is rejected.
	HMACKeys map[string]string `json:"hmacKeys,omitempty"`
	// HMACLifetimes overrides how old an X-Date may be per auth type
	// (defaults: view and edit 30s, admin 90s).
	HMACLifetimes map[string]Duration `json:"hmacLifetimes,omitempty"`
	// BearerTokens maps an accepted bearer token to the auth type whose
	// permissions it gets.
	BearerTokens map[string]string `json:"bearerTokens,omitempty"`
	// DisableAuth lets every request through with admin rights.
	DisableAuth bool `json:"disableAuth,omitempty"`

	Partitions []Partition   `json:"partitions,omitempty"`
	Sizes      []Size        `json:"sizes,omitempty"`
	Images     []Image       `json:"images,omitempty"`
	Projects   []Project     `json:"projects,omitempty"`
	Networks   []Network     `json:"networks,omitempty"`
	Machines   []MachinePool `json:"machines,omitempty"`

	Provisioning Provisioning `json:"provisioning,omitzero"`

	// Faults are applied at start, as POST /_sim/faults/{name} would
	// (names and arguments: GET /_sim/faults, or docs/metal-api.md).
	Faults []FaultSpec `json:"faults,omitempty"`
}

// Partition is a simulated partition.
type Partition struct {
	ID          string            `json:"id"`
	Name        string            `json:"name,omitempty"`
	Description string            `json:"description,omitempty"`
	DNSServers  []string          `json:"dnsServers,omitempty"`
	NTPServers  []string          `json:"ntpServers,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// Size is a simulated machine size.
type Size struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	CPUCores    int64  `json:"cpuCores,omitempty"`
	MemoryBytes int64  `json:"memoryBytes,omitempty"`
	DiskBytes   int64  `json:"diskBytes,omitempty"`
}

// Image is a simulated OS image. ID is "<os>-<semver>".
type Image struct {
	ID             string    `json:"id"`
	Name           string    `json:"name,omitempty"`
	Description    string    `json:"description,omitempty"`
	URL            string    `json:"url,omitempty"`
	Features       []string  `json:"features,omitempty"`
	Classification string    `json:"classification,omitempty"`
	ExpirationDate time.Time `json:"expirationDate,omitzero"`
}

// Project is a simulated masterdata project.
type Project struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	TenantID    string `json:"tenantID,omitempty"`
}

// Network is a simulated network. A network with ParentNetworkID is a
// project's private network (shared ones may be added to firewalls as
// secondary networks); PrivateSuper and Underlay mark the partition's
// infrastructure networks; anything else is external.
type Network struct {
	ID                  string            `json:"id"`
	Name                string            `json:"name,omitempty"`
	Description         string            `json:"description,omitempty"`
	PartitionID         string            `json:"partitionID,omitempty"`
	ProjectID           string            `json:"projectID,omitempty"`
	ParentNetworkID     string            `json:"parentNetworkID,omitempty"`
	Prefixes            []string          `json:"prefixes"`
	DestinationPrefixes []string          `json:"destinationPrefixes,omitempty"`
	NAT                 bool              `json:"nat,omitempty"`
	PrivateSuper        bool              `json:"privateSuper,omitempty"`
	Underlay            bool              `json:"underlay,omitempty"`
	Shared              bool              `json:"shared,omitempty"`
	VRF                 int64             `json:"vrf,omitempty"`
	Labels              map[string]string `json:"labels,omitempty"`
}

// MachinePool seeds Count waiting machines of one partition and size.
type MachinePool struct {
	Partition string `json:"partition"`
	Size      string `json:"size"`
	Count     int    `json:"count"`
	Rack      string `json:"rack,omitempty"`
}

// Provisioning holds the timings of the simulated machine lifecycle. Zero
// fields take the defaults in DefaultProvisioning.
type Provisioning struct {
	// Installing is how long a machine stays in Installing after allocation.
	Installing Duration `json:"installing,omitzero"`
	// BootingNewKernel is how long it takes from kexec to Phoned Home.
	BootingNewKernel Duration `json:"bootingNewKernel,omitzero"`
	// HeartbeatInterval is how often a running machine refreshes its
	// last event time.
	HeartbeatInterval Duration `json:"heartbeatInterval,omitzero"`
	// DeadAfter is how old the last event may be for liveliness Alive.
	DeadAfter Duration `json:"deadAfter,omitzero"`
	// ReclaimDelay is the time from free to PXE Booting.
	ReclaimDelay Duration `json:"reclaimDelay,omitzero"`
	// ReclaimStep is the time between PXE Booting, Preparing, Registering
	// and Waiting (also used for the crash-loop retry cycle).
	ReclaimStep Duration `json:"reclaimStep,omitzero"`
	// FailedReclaimAfter is how late a Phoned Home after Machine Reclaim
	// must arrive to flag failed_machine_reclaim.
	FailedReclaimAfter Duration `json:"failedReclaimAfter,omitzero"`
}

// DefaultProvisioning returns short timings so that controller tests with a
// real clock finish in seconds, and metal-api's liveliness thresholds.
func DefaultProvisioning() Provisioning {
	return Provisioning{
		Installing:         Duration{2 * time.Second},
		BootingNewKernel:   Duration{1 * time.Second},
		HeartbeatInterval:  Duration{30 * time.Second},
		DeadAfter:          Duration{5 * time.Minute},
		ReclaimDelay:       Duration{1 * time.Second},
		ReclaimStep:        Duration{500 * time.Millisecond},
		FailedReclaimAfter: Duration{5 * time.Minute},
	}
}

func (p Provisioning) withDefaults() Provisioning {
	d := DefaultProvisioning()
	fill := func(v *Duration, def Duration) {
		if v.Duration <= 0 {
			*v = def
		}
	}
	fill(&p.Installing, d.Installing)
	fill(&p.BootingNewKernel, d.BootingNewKernel)
	fill(&p.HeartbeatInterval, d.HeartbeatInterval)
	fill(&p.DeadAfter, d.DeadAfter)
	fill(&p.ReclaimDelay, d.ReclaimDelay)
	fill(&p.ReclaimStep, d.ReclaimStep)
	fill(&p.FailedReclaimAfter, d.FailedReclaimAfter)
	return p
}

// Duration is a time.Duration that reads "1.5s" style strings from YAML
// and JSON (plain numbers are nanoseconds).
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts "2s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		d.Duration = v
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string like \"2s\": %w", err)
	}
	d.Duration = time.Duration(n)
	return nil
}

// DefaultConfig returns the built-in fleet: one partition with a pool of
// DefaultPoolSize machines, firewall and machine images, two projects with
// a private network each, the internet, a shared DMZ network and HMAC keys
// for all three auth types.
func DefaultConfig() Config {
	return Config{
		BasePath: "/",
		HMACKeys: map[string]string{
			metal.AuthTypeView:  "metal-view-key",
			metal.AuthTypeEdit:  "metal-edit-key",
			metal.AuthTypeAdmin: "metal-admin-key",
		},
		Partitions: []Partition{{
			ID: DefaultPartition, Name: "Partition A", Description: "simulated partition",
			DNSServers: []string{"1.1.1.1", "8.8.8.8"},
			NTPServers: []string{"0.pool.ntp.org"},
		}},
		Sizes: []Size{{
			ID: DefaultSize, Name: "n1-medium-x86", Description: "4 cores, 32 GiB",
			CPUCores: 4, MemoryBytes: 32 << 30, DiskBytes: 960 << 30,
		}},
		Images: []Image{
			{ID: "firewall-ubuntu-3.0.20240201", Name: "Firewall 3 Ubuntu", Features: []string{metal.ImageFeatureFirewall}, Classification: "supported"},
			{ID: DefaultImage, Name: "Firewall 3 Ubuntu", Features: []string{metal.ImageFeatureFirewall}, Classification: "supported"},
			{ID: "firewall-ubuntu-2.0.20230101", Name: "Firewall 2 Ubuntu", Features: []string{metal.ImageFeatureFirewall}, Classification: "deprecated"},
			{ID: DefaultMachineImage, Name: "Ubuntu 24.04", Features: []string{metal.ImageFeatureMachine}, Classification: "supported"},
		},
		Projects: []Project{
			{ID: DefaultProject, Name: "project-a", TenantID: "tenant-a"},
			{ID: DefaultOtherProject, Name: "project-b", TenantID: "tenant-a"},
		},
		Networks: []Network{
			{
				ID: DefaultExternalNetwork, Name: "internet", Description: "internet uplink",
				Prefixes: []string{"185.1.2.0/24"}, DestinationPrefixes: []string{"0.0.0.0/0"},
				NAT: true, VRF: 104009,
				Labels: map[string]string{metal.LabelDefaultExternalNetwork: ""},
			},
			{
				ID: DefaultSuperNetwork, PartitionID: DefaultPartition, Description: "tenant super network",
				Prefixes: []string{"10.0.0.0/16"}, PrivateSuper: true,
			},
			{
				ID: DefaultUnderlayNetwork, PartitionID: DefaultPartition, Description: "underlay",
				Prefixes: []string{"10.1.0.0/24"}, Underlay: true,
			},
			{
				ID: DefaultPrivateNetwork, Name: "tenant network 1", PartitionID: DefaultPartition,
				ProjectID: DefaultProject, ParentNetworkID: DefaultSuperNetwork,
				Prefixes: []string{"10.0.4.0/22"}, VRF: 30,
			},
			{
				ID: DefaultOtherPrivate, Name: "tenant network 2", PartitionID: DefaultPartition,
				ProjectID: DefaultOtherProject, ParentNetworkID: DefaultSuperNetwork,
				Prefixes: []string{"10.0.8.0/22"}, VRF: 31,
			},
			{
				ID: DefaultDMZNetwork, Name: "dmz", PartitionID: DefaultPartition,
				ProjectID: DefaultProject, ParentNetworkID: DefaultSuperNetwork,
				Prefixes: []string{"10.0.16.0/22"}, Shared: true, VRF: 40,
			},
		},
		Machines:     []MachinePool{{Partition: DefaultPartition, Size: DefaultSize, Count: DefaultPoolSize, Rack: "rack-1"}},
		Provisioning: DefaultProvisioning(),
	}
}

// LoadConfig reads a YAML config file and validates it.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("parsing %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks references and prefixes.
func (c Config) Validate() error {
	var errs []error
	if c.BasePath != "" && (!strings.HasPrefix(c.BasePath, "/") || !strings.HasSuffix(c.BasePath, "/")) {
		errs = append(errs, fmt.Errorf("basePath %q must start and end with /", c.BasePath))
	}
	for t := range c.HMACKeys {
		if !validAuthType(t) {
			errs = append(errs, fmt.Errorf("hmacKeys: unknown auth type %q", t))
		}
	}
	for _, t := range c.BearerTokens {
		if !validAuthType(t) {
			errs = append(errs, fmt.Errorf("bearerTokens: unknown auth type %q", t))
		}
	}
	partitions := idSet(c.Partitions, func(p Partition) string { return p.ID })
	sizes := idSet(c.Sizes, func(s Size) string { return s.ID })
	networks := idSet(c.Networks, func(n Network) string { return n.ID })
	for _, img := range c.Images {
		if _, err := parseImageID(img.ID); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range c.Networks {
		if len(n.Prefixes) == 0 {
			errs = append(errs, fmt.Errorf("network %q: no prefixes", n.ID))
		}
		for _, p := range n.Prefixes {
			if _, err := netip.ParsePrefix(p); err != nil {
				errs = append(errs, fmt.Errorf("network %q: %w", n.ID, err))
			}
		}
		if n.PartitionID != "" && !partitions[n.PartitionID] {
			errs = append(errs, fmt.Errorf("network %q: unknown partition %q", n.ID, n.PartitionID))
		}
		if n.ParentNetworkID != "" && !networks[n.ParentNetworkID] {
			errs = append(errs, fmt.Errorf("network %q: unknown parent %q", n.ID, n.ParentNetworkID))
		}
	}
	for _, m := range c.Machines {
		if !partitions[m.Partition] || !sizes[m.Size] {
			errs = append(errs, fmt.Errorf("machine pool %s/%s: unknown partition or size", m.Partition, m.Size))
		}
	}
	errs = append(errs, checkFaults(c.Faults)...)
	return errors.Join(errs...)
}

func validAuthType(t string) bool {
	return t == metal.AuthTypeView || t == metal.AuthTypeEdit || t == metal.AuthTypeAdmin
}

func idSet[T any](items []T, id func(T) string) map[string]bool {
	set := make(map[string]bool, len(items))
	for _, it := range items {
		set[id(it)] = true
	}
	return set
}
