// Package config reads the agent's configuration file: where each kind of rule comes from
// (sources) and which sub-controllers run (controllers), in the format of MEP-16, plus the
// agent's own nftables settings.
package config

import (
	"github.com/palisade-fw/palisade/internal/agent/model"
)

// Config is the whole file.
type Config struct {
	// Name is the firewall's name; defaults to the hostname.
	Name        string      `json:"name,omitempty"`
	Sources     Sources     `json:"sources"`
	Controllers Controllers `json:"controllers"`
	Nftables    Nftables    `json:"nftables,omitempty"`
	Reporting   Reporting   `json:"reporting,omitempty"`
	Distance    Distance    `json:"distance,omitempty"`
	DNS         DNS         `json:"dns,omitempty"`
	Metrics     Metrics     `json:"metrics,omitempty"`
	IDS         *IDS        `json:"ids,omitempty"`
	Host        Host        `json:"host,omitempty"`
}

// Reporting tunes how the agent reports to the seed Firewall and the FirewallMonitor
// (Palisade).
type Reporting struct {
	// Interval is the least time between two reports that only refresh statistics and
	// timestamps; a report after an apply is written at once. Default 30s.
	Interval string `json:"interval,omitempty"`
}

// Distance configures the BGP AS-path prepend that realizes Firewall.spec.distance
// (Palisade).
type Distance struct {
	// FRRFile receives the route-map fragment; default /etc/frr/palisade-distance.conf.
	// "-" disables distance handling (reported as not supported).
	FRRFile string `json:"frrFile,omitempty"`
	// RouteMap is the name of the route-map; default palisade-distance.
	RouteMap string `json:"routeMap,omitempty"`
	// ASN is the local AS prepended; default the ASN of the firewall's private primary
	// network (Firewall.status.firewallNetworks or metal-api).
	ASN int64 `json:"asn,omitempty"`
}

// Sources are where the controllers read from. Only configured sources exist.
type Sources struct {
	Seed   *KubeSource   `json:"seed,omitempty"`
	Shoot  *KubeSource   `json:"shoot,omitempty"`
	Metal  *MetalSource  `json:"metal,omitempty"`
	Static *StaticSource `json:"static,omitempty"`
}

// KubeSource is a Kubernetes API reached through a kubeconfig file.
type KubeSource struct {
	Kubeconfig string `json:"kubeconfig"`
	Namespace  string `json:"namespace,omitempty"`
	// StatusQPS and StatusBurst bound the agent's writes to this API server (shoot only: CWNP
	// statuses, status.fqdn_state, events); default 50 and 100, so the 1,000 statuses after a
	// start take about 20 s instead of client-go's 200 s at 5 QPS, while the API server still
	// sees a steady, modest rate. Only statuses that changed are written.
	StatusQPS   float32 `json:"statusQPS,omitempty"`
	StatusBurst int     `json:"statusBurst,omitempty"`
}

// Defaults of the shoot's status writes.
const (
	DefaultStatusQPS   = 50
	DefaultStatusBurst = 100
)

// MetalSource is a metal-api endpoint.
type MetalSource struct {
	URL       string `json:"url"`
	HMAC      Secret `json:"hmac,omitempty"`
	Type      string `json:"type,omitempty"`
	ProjectID string `json:"projectID,omitempty"`
	// MachineID selects the firewall machine (Palisade); without it the firewall is found
	// by Hostname in ProjectID.
	MachineID string `json:"machineID,omitempty"`
	// Hostname of the firewall's allocation (Palisade); default the config's name.
	Hostname string `json:"hostname,omitempty"`
	// Interval between two reads of the machine (Palisade); default 30s.
	Interval string `json:"interval,omitempty"`
}

// StaticSource holds everything the other sources provide, inline.
type StaticSource struct {
	// Firewall mirrors a Firewall spec (plus its status networks).
	Firewall *StaticFirewall `json:"firewall,omitempty"`
	// CWNP is one policy spec, applied as the policy named "static".
	CWNP *model.PolicySpec `json:"cwnp,omitempty"`
	// Services are exposed like Services of type LoadBalancer or NodePort.
	Services []model.ServiceSpec `json:"services,omitempty"`
}

// StaticFirewall is a Firewall spec plus the fields the agent ignores but the format allows.
type StaticFirewall struct {
	model.FirewallSpec `json:",inline"`
	// ControllerURL/Version drive the self-update; SSHPublicKeys the authorized_keys file.
	ControllerURL           string   `json:"controllerURL,omitempty"`
	ControllerVersion       string   `json:"controllerVersion,omitempty"`
	NftablesExporterURL     string   `json:"nftablesExporterURL,omitempty"`
	NftablesExporterVersion string   `json:"nftablesExporterVersion,omitempty"`
	Interval                string   `json:"interval,omitempty"`
	SSHPublicKeys           []string `json:"sshPublicKeys,omitempty"`
}

// SourceKind names a source.
type SourceKind string

const (
	SourceSeed   SourceKind = "seed"
	SourceShoot  SourceKind = "shoot"
	SourceMetal  SourceKind = "metal"
	SourceStatic SourceKind = "static"
)

// Controllers are the sub-controllers; a nil one is disabled.
type Controllers struct {
	Firewall *FirewallController `json:"firewall,omitempty"`
	Service  *Controller         `json:"service,omitempty"`
	CWNP     *Controller         `json:"cwnp,omitempty"`
	Monitor  *Controller         `json:"monitor,omitempty"`
}

// Controller reads from one source.
type Controller struct {
	Source SourceKind `json:"source"`
}

// FirewallController is the base controller.
type FirewallController struct {
	Source     SourceKind  `json:"source"`
	SelfUpdate *SelfUpdate `json:"selfUpdate,omitempty"`
	Droptailer *Droptailer `json:"droptailer,omitempty"`
}

// Toggle switches an optional feature.
type Toggle struct {
	Enabled bool `json:"enabled"`
}

// Nftables configures the agent's table and rule file (Palisade).
type Nftables struct {
	// Table is the agent's table in the inet family; default "firewall".
	Table string `json:"table,omitempty"`
	// RuleFile is where the applied ruleset is written; default
	// /etc/nftables/firewall-controller.v4.
	RuleFile string `json:"ruleFile,omitempty"`
	// DefaultEgress is the egress metal-stack allows "without further configuration"
	// (release v0.6.0): TCP 443 and TCP/UDP 53 from the cluster to every destination
	// (capped by allowedNetworks). On unless set to false.
	DefaultEgress *bool `json:"defaultEgress,omitempty"`
	// RepairDrift re-applies the last applied ruleset when the kernel's table no longer holds
	// it (someone ran nft by hand); false only reports the drift. On unless set to false.
	RepairDrift *bool `json:"repairDrift,omitempty"`
	// DriftCheckInterval is how often the table is compared with the applied ruleset
	// besides after every nftables notification; default 30s.
	DriftCheckInterval string `json:"driftCheckInterval,omitempty"`
}

// RepairDriftEnabled tells whether drift is repaired or only reported.
func (n Nftables) RepairDriftEnabled() bool { return n.RepairDrift == nil || *n.RepairDrift }

// DefaultEgressEnabled tells whether the seed's default egress is in force.
func (n Nftables) DefaultEgressEnabled() bool { return n.DefaultEgress == nil || *n.DefaultEgress }

// Secret is a string that never shows up in logs or errors.
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<redacted>"
}

// GoString hides the value from %#v as well.
func (s Secret) GoString() string { return s.String() }
