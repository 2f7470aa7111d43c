package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

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
	if c.Sources.Shoot != nil && c.Sources.Shoot.Namespace == "" {
		c.Sources.Shoot.Namespace = DefaultShootNamespace
	}
	if c.Nftables.Table == "" {
		c.Nftables.Table = "firewall"
	}
	if c.Nftables.RuleFile == "" {
		c.Nftables.RuleFile = model.DefaultRuleFile
	}
	return nil
}

var tableName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,63}$`)

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
	if s := c.Sources.Shoot; s != nil && s.Kubeconfig == "" {
		add("sources.shoot.kubeconfig", "required")
	}
	if s := c.Sources.Metal; s != nil {
		if u, err := url.Parse(s.URL); s.URL == "" || err != nil || u.Scheme == "" || u.Host == "" {
			add("sources.metal.url", "must be an absolute URL")
		}
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
