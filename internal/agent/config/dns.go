package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"
)

// DNS configures the agent's DNS proxy, which enforces toFQDNs rules (Palisade).
type DNS struct {
	// Enabled runs the proxy; default true. Without it toFQDNs rules open nothing.
	Enabled *bool `json:"enabled,omitempty"`
	// Port is where the proxy listens (UDP and TCP on every address); the cluster's DNS
	// traffic is redirected there. Default 53.
	Port uint16 `json:"port,omitempty"`
	// Upstreams ("ip" or "ip:port", IPv6 as "[ip]:port") are the resolvers used when the
	// Firewall spec has no dnsServerAddress, e.g. the partition's; default the nameservers
	// of /etc/resolv.conf.
	Upstreams []string `json:"upstreams,omitempty"`
	// MinTTL and MaxTTL clamp how long a learned address stays open; defaults 30s and 1h.
	MinTTL string `json:"minTTL,omitempty"`
	MaxTTL string `json:"maxTTL,omitempty"`
	// MaxNames and MaxAddresses cap the learned state; defaults 10000 and 50000.
	MaxNames     int `json:"maxNames,omitempty"`
	MaxAddresses int `json:"maxAddresses,omitempty"`
	// StateFile keeps the learned state across restarts; "-" keeps nothing. Default
	// /var/lib/palisade-agent/dns-state.json.
	StateFile string `json:"stateFile,omitempty"`
	// StateInterval is the least time between two writes of the state file; default 10s.
	StateInterval string `json:"stateInterval,omitempty"`
	// StatusInterval is the least time between two writes of a CWNP's status.fqdn_state;
	// default 30s.
	StatusInterval string `json:"statusInterval,omitempty"`
}

// Defaults of the dns block.
const (
	DefaultDNSStateFile      = StateDir + "/dns-state.json"
	DefaultDNSStateInterval  = 10 * time.Second
	DefaultDNSStatusInterval = 30 * time.Second
	DefaultDNSMinTTL         = 30 * time.Second
	DefaultDNSMaxTTL         = time.Hour
	// DNSStateDisabled as dns.stateFile keeps no state.
	DNSStateDisabled = "-"
)

// ProxyEnabled tells whether the DNS proxy runs.
func (d DNS) ProxyEnabled() bool { return d.Enabled == nil || *d.Enabled }

func (d *DNS) defaults() {
	if d.Port == 0 {
		d.Port = 53
	}
	if d.MinTTL == "" {
		d.MinTTL = DefaultDNSMinTTL.String()
	}
	if d.MaxTTL == "" {
		d.MaxTTL = DefaultDNSMaxTTL.String()
	}
	if d.MaxNames == 0 {
		d.MaxNames = 10000
	}
	if d.MaxAddresses == 0 {
		d.MaxAddresses = 50000
	}
	if d.StateFile == "" {
		d.StateFile = DefaultDNSStateFile
	}
	if d.StateInterval == "" {
		d.StateInterval = DefaultDNSStateInterval.String()
	}
	if d.StatusInterval == "" {
		d.StatusInterval = DefaultDNSStatusInterval.String()
	}
}

func (d DNS) validate(add func(string, string, ...any)) {
	for i, u := range d.Upstreams {
		if _, err := ParseUpstream(u); err != nil {
			add(fmt.Sprintf("dns.upstreams[%d]", i), "%v", err)
		}
	}
	checkDuration(add, "dns.minTTL", d.MinTTL)
	checkDuration(add, "dns.maxTTL", d.MaxTTL)
	if Duration(d.MaxTTL) < Duration(d.MinTTL) {
		add("dns.maxTTL", "%s is below dns.minTTL %s", d.MaxTTL, d.MinTTL)
	}
	if d.MaxNames < 0 {
		add("dns.maxNames", "must be positive")
	}
	if d.MaxAddresses < 0 {
		add("dns.maxAddresses", "must be positive")
	}
	if d.StateFile != DNSStateDisabled && !filepath.IsAbs(d.StateFile) {
		add("dns.stateFile", "%q must be an absolute path or -", d.StateFile)
	}
	checkDuration(add, "dns.stateInterval", d.StateInterval)
	checkDuration(add, "dns.statusInterval", d.StatusInterval)
}

// ParseUpstream reads "ip" or "ip:port" ("[ip]:port" for IPv6); the port defaults to 53.
func ParseUpstream(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%s is not an IP address or IP:port", strconv.Quote(s))
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
