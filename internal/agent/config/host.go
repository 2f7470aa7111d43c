package config

import (
	"fmt"
	"net"
	"path/filepath"
)

// Metrics configures the Prometheus endpoint (Palisade).
type Metrics struct {
	// Address is where /metrics (and the dropped-packet stream /droplog) are served;
	// default ":9630", the nftables-exporter's port. "-" disables the endpoint.
	Address string `json:"address,omitempty"`
}

// Droptailer ships the logged packets (controllers.firewall.droptailer).
type Droptailer struct {
	Enabled bool `json:"enabled"`
	// Rate bounds the lines per second (default 100); more are counted as lost.
	Rate float64 `json:"rate,omitempty"`
	// Buffer is how many lines are kept for receivers that connect late (default 4096).
	Buffer int `json:"buffer,omitempty"`
}

// SelfUpdate replaces the agent binary with the Firewall's controllerURL
// (controllers.firewall.selfUpdate).
type SelfUpdate struct {
	Enabled bool `json:"enabled"`
	// PublicKeyFile is the PEM ed25519 key release artifacts are signed with (the userdata
	// ships it). Without it every update is refused; unsigned binaries always are.
	PublicKeyFile string `json:"publicKeyFile,omitempty"`
	// Binary is the installed agent binary; default the running executable.
	Binary string `json:"binary,omitempty"`
	// HealthTimeout is how long a new binary gets to report healthy before it is rolled
	// back; default 2m.
	HealthTimeout string `json:"healthTimeout,omitempty"`
	// RestartCommand restarts the agent's service; default
	// ["systemctl", "restart", "firewall-controller.service"].
	RestartCommand []string `json:"restartCommand,omitempty"`
}

// IDS reads suricata's statistics (Palisade).
type IDS struct {
	// EveFile is suricata's eve.json with `stats` records; default
	// /var/log/suricata/eve.json.
	EveFile string `json:"eveFile,omitempty"`
}

// Host configures the host state the Firewall spec asks for (Palisade).
type Host struct {
	// EgressAddresses puts the SNAT addresses of spec.egressRules on their interfaces;
	// default true.
	EgressAddresses *bool `json:"egressAddresses,omitempty"`
	// EgressStateFile remembers which addresses the agent added, so that only those are
	// ever removed; default /var/lib/palisade-agent/egress-addresses.json.
	EgressStateFile string `json:"egressStateFile,omitempty"`
	// SSH writes spec.sshPublicKeys as the admin user's authorized_keys.
	SSH SSH `json:"ssh,omitempty"`
}

// SSH configures the authorized_keys file.
type SSH struct {
	// AuthorizedKeysFile is written from spec.sshPublicKeys; default
	// /home/metal/.ssh/authorized_keys. "-" leaves the keys alone.
	AuthorizedKeysFile string `json:"authorizedKeysFile,omitempty"`
	// User owns the file; default metal.
	User string `json:"user,omitempty"`
}

// Defaults of the host additions.
const (
	// StateDir holds the agent's state files; the unit's StateDirectory= creates it.
	StateDir                  = "/var/lib/palisade-agent"
	DefaultEgressStateFile    = StateDir + "/egress-addresses.json"
	DefaultAuthorizedKeysFile = "/home/metal/.ssh/authorized_keys"
	DefaultSSHUser            = "metal"
	DefaultEveFile            = "/var/log/suricata/eve.json"
	DefaultHealthTimeout      = "2m"
	// Disabled as a path or address turns a feature off.
	Disabled = "-"
)

// EgressAddressesEnabled tells whether SNAT addresses go on the interfaces.
func (h Host) EgressAddressesEnabled() bool { return h.EgressAddresses == nil || *h.EgressAddresses }

func (c *Config) hostDefaults() {
	if c.Metrics.Address == "" {
		c.Metrics.Address = ":9630"
	}
	if c.Host.EgressStateFile == "" {
		c.Host.EgressStateFile = DefaultEgressStateFile
	}
	if c.Host.SSH.AuthorizedKeysFile == "" {
		c.Host.SSH.AuthorizedKeysFile = DefaultAuthorizedKeysFile
	}
	if c.Host.SSH.User == "" {
		c.Host.SSH.User = DefaultSSHUser
	}
	if c.IDS != nil && c.IDS.EveFile == "" {
		c.IDS.EveFile = DefaultEveFile
	}
	if fw := c.Controllers.Firewall; fw != nil {
		if d := fw.Droptailer; d != nil {
			if d.Rate == 0 {
				d.Rate = 100
			}
			if d.Buffer == 0 {
				d.Buffer = 4096
			}
		}
		if s := fw.SelfUpdate; s != nil && s.HealthTimeout == "" {
			s.HealthTimeout = DefaultHealthTimeout
		}
	}
}

func (c *Config) hostValidate(add func(string, string, ...any)) {
	if a := c.Metrics.Address; a != Disabled {
		if _, _, err := net.SplitHostPort(a); err != nil {
			add("metrics.address", "%q must be host:port, :port or -", a)
		}
	}
	if f := c.Host.SSH.AuthorizedKeysFile; f != Disabled && !filepath.IsAbs(f) {
		add("host.ssh.authorizedKeysFile", "%q must be an absolute path or -", f)
	}
	if c.IDS != nil && !filepath.IsAbs(c.IDS.EveFile) {
		add("ids.eveFile", "%q must be an absolute path", c.IDS.EveFile)
	}
	fw := c.Controllers.Firewall
	if fw == nil {
		return
	}
	if d := fw.Droptailer; d != nil && (d.Rate < 0 || d.Buffer < 0) {
		add("controllers.firewall.droptailer", "rate and buffer must be positive")
	}
	if s := fw.SelfUpdate; s != nil && s.Enabled {
		// Without a key the config stays valid (MEP-16 files enable selfUpdate without one),
		// but every update is refused with a status message saying why.
		if s.PublicKeyFile != "" && !filepath.IsAbs(s.PublicKeyFile) {
			add("controllers.firewall.selfUpdate.publicKeyFile", "%q must be an absolute path", s.PublicKeyFile)
		}
		if s.Binary != "" && !filepath.IsAbs(s.Binary) {
			add("controllers.firewall.selfUpdate.binary", "%q must be an absolute path", s.Binary)
		}
		checkDuration(add, "controllers.firewall.selfUpdate.healthTimeout", s.HealthTimeout)
	}
}

// String describes the droptailer settings for logs.
func (d Droptailer) String() string { return fmt.Sprintf("rate=%g/s buffer=%d", d.Rate, d.Buffer) }
