package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/palisade-fw/palisade/internal/agent/model"
)

// DefaultShootNamespace is where ClusterwideNetworkPolicies live.
const DefaultShootNamespace = "firewall"

// Load reads, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes strictly (unknown keys are errors), applies defaults and validates.
func Parse(data []byte) (*Config, error) {
	var cfg Config
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) defaults() error {
	if c.Name == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("name: not set and the hostname is unknown: %w", err)
		}
		c.Name = host
	}
	if sh := c.Sources.Shoot; sh != nil {
		if sh.Namespace == "" {
			sh.Namespace = DefaultShootNamespace
		}
		if sh.StatusQPS == 0 {
			sh.StatusQPS = DefaultStatusQPS
		}
		if sh.StatusBurst == 0 {
			sh.StatusBurst = DefaultStatusBurst
		}
	}
	if m := c.Sources.Metal; m != nil {
		if m.Hostname == "" {
			m.Hostname = c.Name
		}
		if m.Interval == "" {
			m.Interval = DefaultMetalInterval.String()
		}
		if m.Type == "" {
			m.Type = "Metal-View"
		}
	}
	if c.Reporting.Interval == "" {
		c.Reporting.Interval = DefaultReportInterval.String()
	}
	if c.Distance.FRRFile == "" {
		c.Distance.FRRFile = DefaultFRRFile
	}
	if c.Distance.RouteMap == "" {
		c.Distance.RouteMap = DefaultRouteMap
	}
	if c.Nftables.Table == "" {
		c.Nftables.Table = "firewall"
	}
	if c.Nftables.DriftCheckInterval == "" {
		c.Nftables.DriftCheckInterval = DefaultDriftCheckInterval.String()
	}
	if c.Nftables.RuleFile == "" {
		c.Nftables.RuleFile = model.DefaultRuleFile
	}
	c.DNS.defaults()
	c.hostDefaults()
	return nil
}

var (
	tableName    = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,63}$`)
	routeMapName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)
)

// Defaults of the Palisade additions.
const (
	DefaultMetalInterval  = 30 * time.Second
	DefaultReportInterval = 30 * time.Second
	// DefaultDriftCheckInterval is nftables.driftCheckInterval's default.
	DefaultDriftCheckInterval = 30 * time.Second
	DefaultFRRFile            = "/etc/frr/palisade-distance.conf"
	DefaultRouteMap           = "palisade-distance"
	// DistanceDisabled as distance.frrFile turns distance handling off.
	DistanceDisabled = "-"
)

func checkDuration(add func(string, string, ...any), key, value string) {
	d, err := time.ParseDuration(value)
	if err != nil || d < time.Second {
		add(key, "%q must be a duration of at least 1s, e.g. 30s", value)
	}
}

// Duration parses a duration the config validated; zero if it is invalid.
func Duration(value string) time.Duration {
	d, _ := time.ParseDuration(value)
	return d
}

// Validate reports every problem, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	if s := c.Sources.Seed; s != nil {
		if s.Kubeconfig == "" {
			add("sources.seed.kubeconfig", "required")
		}
		if s.Namespace == "" {
			add("sources.seed.namespace", "required")
		}
	}
	if s := c.Sources.Shoot; s != nil {
		if s.Kubeconfig == "" {
			add("sources.shoot.kubeconfig", "required")
		}
		if s.StatusQPS < 0 {
			add("sources.shoot.statusQPS", "must be positive")
		}
		if s.StatusBurst < 0 {
			add("sources.shoot.statusBurst", "must be positive")
		}
	}
	if s := c.Sources.Metal; s != nil {
		if u, err := url.Parse(s.URL); s.URL == "" || err != nil || u.Scheme == "" || u.Host == "" {
			add("sources.metal.url", "must be an absolute URL")
		}
		if s.HMAC == "" {
			add("sources.metal.hmac", "required")
		}
		switch s.Type {
		case "Metal-View", "Metal-Edit", "Metal-Admin":
		default:
			add("sources.metal.type", "%q is not one of Metal-View, Metal-Edit, Metal-Admin", s.Type)
		}
		if s.MachineID == "" && s.ProjectID == "" {
			add("sources.metal.projectID", "required unless machineID is set (the firewall is found by hostname in the project)")
		}
		checkDuration(add, "sources.metal.interval", s.Interval)
	}
	checkDuration(add, "reporting.interval", c.Reporting.Interval)
	checkDuration(add, "nftables.driftCheckInterval", c.Nftables.DriftCheckInterval)
	if c.Distance.FRRFile != DistanceDisabled && !filepath.IsAbs(c.Distance.FRRFile) {
		add("distance.frrFile", "%q must be an absolute path or -", c.Distance.FRRFile)
	}
	if !routeMapName.MatchString(c.Distance.RouteMap) {
		add("distance.routeMap", "%q must hold only letters, digits, _ and - (at most 63)", c.Distance.RouteMap)
	}
	if c.Distance.ASN < 0 || c.Distance.ASN > 4294967295 {
		add("distance.asn", "%d is not a 32-bit AS number", c.Distance.ASN)
	}

	if c.Controllers.Firewall == nil {
		add("controllers.firewall", "required: it is the base controller")
	} else {
		c.checkSource(add, "controllers.firewall.source", c.Controllers.Firewall.Source, SourceSeed, SourceMetal, SourceStatic)
	}
	if ctl := c.Controllers.Service; ctl != nil {
		c.checkSource(add, "controllers.service.source", ctl.Source, SourceShoot, SourceMetal, SourceStatic)
	}
	if ctl := c.Controllers.CWNP; ctl != nil {
		c.checkSource(add, "controllers.cwnp.source", ctl.Source, SourceShoot, SourceMetal, SourceStatic)
	}
	if ctl := c.Controllers.Monitor; ctl != nil {
		c.checkSource(add, "controllers.monitor.source", ctl.Source, SourceShoot)
	}

	if !tableName.MatchString(c.Nftables.Table) {
		add("nftables.table", "%q must start with a letter and hold only letters, digits, _ and - (at most 64)", c.Nftables.Table)
	}
	if !filepath.IsAbs(c.Nftables.RuleFile) {
		add("nftables.ruleFile", "%q must be an absolute path", c.Nftables.RuleFile)
	}
	c.DNS.validate(add)
	c.hostValidate(add)
	return errors.Join(errs...)
}

// checkSource checks that kind is allowed for the controller and configured in sources.
func (c *Config) checkSource(add func(string, string, ...any), key string, kind SourceKind, allowed ...SourceKind) {
	names := make([]string, len(allowed))
	ok := false
	for i, a := range allowed {
		names[i] = string(a)
		ok = ok || a == kind
	}
	switch {
	case kind == "":
		add(key, "required, one of %s", strings.Join(names, ", "))
	case !ok:
		add(key, "%q is not one of %s", kind, strings.Join(names, ", "))
	case !c.hasSource(kind):
		add(key, "%q is not configured under sources.%s", kind, kind)
	}
}

func (c *Config) hasSource(kind SourceKind) bool {
	switch kind {
	case SourceSeed:
		return c.Sources.Seed != nil
	case SourceShoot:
		return c.Sources.Shoot != nil
	case SourceMetal:
		return c.Sources.Metal != nil
	case SourceStatic:
		return c.Sources.Static != nil
	}
	return false
}
