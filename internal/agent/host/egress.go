// Package host puts on the firewall what the Firewall spec asks for besides nftables: the
// SNAT egress addresses on their interfaces and the admin user's SSH keys.
package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-fw/palisade/internal/agent/atomicfile"
	"github.com/palisade-fw/palisade/internal/agent/model"
)

// EgressAddresses keeps the SNAT addresses of spec.egressRules on their interfaces (as
// /32 and /128), IPv4 and IPv6. It removes only addresses it added itself, which it
// remembers in StateFile across restarts; every other address stays untouched.
type EgressAddresses struct {
	// Handle works in a network namespace; nil is the agent's own.
	Handle *netlink.Handle
	// StateFile records the addresses the agent added; empty keeps them in memory only.
	StateFile string

	mu     sync.Mutex
	loaded bool
	added  map[string][]netip.Addr // interface -> addresses this agent put there
}

// Reconcile makes the interfaces hold exactly the desired egress addresses among those the
// agent manages. Adding an address that is there already is no error (upstream failed on
// IPv6 with EEXIST). Errors of one interface do not keep the others from being done.
func (e *EgressAddresses) Reconcile(snat []model.SNAT) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.load(); err != nil {
		return err
	}
	desired := map[string][]netip.Addr{}
	for _, s := range snat {
		for _, ip := range s.IPs {
			if !slices.Contains(desired[s.Interface], ip) {
				desired[s.Interface] = append(desired[s.Interface], ip)
			}
		}
	}
	var errs []error
	next := map[string][]netip.Addr{}
	ifaces := map[string]bool{}
	for i := range desired {
		ifaces[i] = true
	}
	for i := range e.added {
		ifaces[i] = true
	}
	for iface := range ifaces {
		kept, err := e.reconcileInterface(iface, desired[iface], e.added[iface])
		if len(kept) > 0 {
			next[iface] = kept
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", iface, err))
		}
	}
	e.added = next
	if err := e.save(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// reconcileInterface returns the addresses this agent manages on iface afterwards.
func (e *EgressAddresses) reconcileInterface(iface string, want, had []netip.Addr) ([]netip.Addr, error) {
	link, err := e.linkByName(iface)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) && len(want) == 0 {
			return nil, nil // the interface went away and with it our addresses
		}
		return had, err
	}
	present, err := e.addrs(link)
	if err != nil {
		return had, err
	}
	var errs []error
	managed := slices.Clone(had)
	for _, ip := range want {
		if !slices.Contains(managed, ip) && present[ip] {
			continue // someone else put it there: use it, never remove it
		}
		if !present[ip] {
			if err := e.addrAdd(link, ip); err != nil && !errors.Is(err, unix.EEXIST) {
				errs = append(errs, fmt.Errorf("adding %s: %w", ip, err))
				continue
			}
		}
		if !slices.Contains(managed, ip) {
			managed = append(managed, ip)
		}
	}
	var kept []netip.Addr
	for _, ip := range managed {
		if slices.Contains(want, ip) {
			kept = append(kept, ip)
			continue
		}
		if present[ip] {
			if err := e.addrDel(link, ip); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("removing %s: %w", ip, err))
				kept = append(kept, ip)
			}
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Less(kept[j]) })
	return kept, errors.Join(errs...)
}

func hostPrefix(ip netip.Addr) *netlink.Addr {
	p := netip.PrefixFrom(ip, ip.BitLen())
	n, _ := netlink.ParseAddr(p.String())
	if ip.Is6() {
		n.Flags = unix.IFA_F_NODAD // usable at once as a source address
	}
	return n
}

func (e *EgressAddresses) linkByName(name string) (netlink.Link, error) {
	if e.Handle != nil {
		return e.Handle.LinkByName(name)
	}
	return netlink.LinkByName(name)
}

func (e *EgressAddresses) addrs(link netlink.Link) (map[netip.Addr]bool, error) {
	var list []netlink.Addr
	var err error
	if e.Handle != nil {
		list, err = e.Handle.AddrList(link, netlink.FAMILY_ALL)
	} else {
		list, err = netlink.AddrList(link, netlink.FAMILY_ALL)
	}
	if err != nil {
		return nil, err
	}
	out := map[netip.Addr]bool{}
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out[ip.Unmap()] = true
		}
	}
	return out, nil
}

func (e *EgressAddresses) addrAdd(link netlink.Link, ip netip.Addr) error {
	if e.Handle != nil {
		return e.Handle.AddrAdd(link, hostPrefix(ip))
	}
	return netlink.AddrAdd(link, hostPrefix(ip))
}

func (e *EgressAddresses) addrDel(link netlink.Link, ip netip.Addr) error {
	if e.Handle != nil {
		return e.Handle.AddrDel(link, hostPrefix(ip))
	}
	return netlink.AddrDel(link, hostPrefix(ip))
}

func (e *EgressAddresses) load() error {
	if e.loaded {
		return nil
	}
	e.loaded, e.added = true, map[string][]netip.Addr{}
	if e.StateFile == "" {
		return nil
	}
	data, err := os.ReadFile(e.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &e.added); err != nil {
		return fmt.Errorf("%s: %w", e.StateFile, err)
	}
	return nil
}

func (e *EgressAddresses) save() error {
	if e.StateFile == "" {
		return nil
	}
	if _, err := os.Stat(e.StateFile); len(e.added) == 0 && errors.Is(err, os.ErrNotExist) {
		return nil // nothing managed, nothing to remember
	}
	data, err := json.Marshal(e.added)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(e.StateFile, data, 0o644, atomicfile.Parents(0o755))
}
