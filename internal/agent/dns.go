package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/miekg/dns"

	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/dnsproxy"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
)

// resolvConf is where the firewall's own resolvers are read when neither the Firewall spec
// nor dns.upstreams names one.
var resolvConf = "/etc/resolv.conf"

// newDNSProxy builds the DNS proxy from the dns block. It writes into the agent's table
// through the applier's kernel path (dnsproxy.NftSets on nft.Netlink.AddToSets: one
// transaction over several sets with a timeout per element). The applier's full syncs keep
// these timeout sets and their elements.
func (a *Agent) newDNSProxy() (*dnsproxy.Proxy, error) {
	d := a.cfg.DNS
	var ups []netip.AddrPort
	for _, u := range d.Upstreams {
		ap, err := config.ParseUpstream(u)
		if err != nil {
			return nil, fmt.Errorf("dns.upstreams: %w", err)
		}
		ups = append(ups, ap)
	}
	if len(ups) == 0 {
		ups = resolvConfServers(resolvConf)
	}
	if len(ups) == 0 {
		a.log.Warn("the DNS proxy has no resolver until the Firewall names dnsServerAddress (dns.upstreams and " + resolvConf + " give none)")
	}
	kernel := a.netlink
	if kernel == nil { // the agent applies to a fake kernel (tests); learned addresses still go to the real one
		nl, err := nft.NewNetlink(a.cfg.Nftables.Table, "")
		if err != nil {
			return nil, err
		}
		kernel = nl
	}
	stateFile := d.StateFile
	if stateFile == config.DNSStateDisabled {
		stateFile = ""
	}
	return dnsproxy.New(dnsproxy.Config{
		Port:          d.Port,
		Upstreams:     ups,
		MinTTL:        config.Duration(d.MinTTL),
		MaxTTL:        config.Duration(d.MaxTTL),
		MaxNames:      d.MaxNames,
		MaxAddresses:  d.MaxAddresses,
		StateFile:     stateFile,
		StateInterval: config.Duration(d.StateInterval),
		Sets:          &dnsproxy.NftSets{Kernel: kernel},
		Metrics:       dnsproxy.NewMetrics(a.x.registry),
		Log:           a.log.With("controller", "dns"),
	})
}

// resolvConfServers returns the nameservers of a resolv.conf. A local stub resolver is fine:
// its own queries leave through the output path, which is never redirected.
func resolvConfServers(path string) []netip.AddrPort {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, s := range cc.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			continue
		}
		port := uint16(53)
		if p, err := strconv.ParseUint(cc.Port, 10, 16); err == nil && p > 0 {
			port = uint16(p)
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), port))
	}
	return out
}

// fqdnStates is what the shoot's status writer reports as fqdn_state; empty until the proxy
// runs.
func (a *Agent) fqdnStates() map[model.ObjectKey]dnsproxy.PolicyState {
	a.proxyMu.Lock()
	p := a.proxy
	a.proxyMu.Unlock()
	if p == nil {
		return nil
	}
	return p.PolicyStates()
}

// startDNSProxy runs the proxy for Run and registers it with the runner before the first
// sync, so it follows every applied ruleset. done is closed when the proxy stopped and saved
// its state. A proxy that cannot listen (e.g. port 53 taken) does not stop the agent: the
// rest of the ruleset still applies, without the DNS redirect, and toFQDNs rules stay closed.
func (a *Agent) startDNSProxy(ctx context.Context, errs chan error) (done <-chan struct{}, err error) {
	stopped := make(chan struct{})
	if !a.cfg.DNS.ProxyEnabled() {
		close(stopped)
		return stopped, nil
	}
	p, err := a.newDNSProxy()
	if err != nil {
		return nil, err
	}
	proxyErr := make(chan error, 1)
	go func() {
		defer close(stopped)
		proxyErr <- p.Run(ctx)
	}()
	select {
	case <-p.Ready():
	case err := <-proxyErr:
		a.log.Error("DNS proxy not started; toFQDNs rules open nothing and DNS is not redirected", "err", err)
		a.runner.SetDNSProxyPort(0)
		return stopped, nil
	}
	a.proxyMu.Lock()
	a.proxy = p
	a.proxyMu.Unlock()
	a.runner.AddObserver(p)
	go func() {
		// A proxy that fails later takes the agent down (and systemd restarts it): the
		// redirect would otherwise send the cluster's DNS nowhere.
		if err := <-proxyErr; err != nil {
			errs <- err
		}
	}()
	return stopped, nil
}
