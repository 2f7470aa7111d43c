package model

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseService validates a Service. ok is false for types the firewall does not expose
// (ClusterIP, ExternalName): those are not errors, just nothing to do.
func ParseService(key ObjectKey, spec ServiceSpec) (svc Service, ok bool, err error) {
	svc = Service{Key: key}
	switch strings.ToLower(spec.Type) {
	case "", "loadbalancer":
		svc.Type = LoadBalancer
	case "nodeport":
		svc.Type = NodePort
	default:
		return Service{}, false, nil
	}
	seenIP := map[netip.Addr]bool{}
	for i, s := range spec.IPs {
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return Service{}, false, fmt.Errorf("ips[%d]: %q is not an IP address", i, printable(s))
		}
		addr = addr.Unmap()
		if !seenIP[addr] {
			seenIP[addr] = true
			svc.IPs = append(svc.IPs, addr)
		}
	}
	type portKey struct {
		proto    Protocol
		port, np uint16
	}
	seenPort := map[portKey]bool{}
	for i, p := range spec.Ports {
		proto, err := ParseProtocol(p.Protocol)
		if err != nil {
			return Service{}, false, fmt.Errorf("ports[%d].protocol: %w", i, err)
		}
		port, err := parsePortNumber(p.Port)
		if err != nil {
			return Service{}, false, fmt.Errorf("ports[%d].port: %w", i, err)
		}
		var nodePort uint16
		if p.NodePort != 0 {
			if nodePort, err = parsePortNumber(p.NodePort); err != nil {
				return Service{}, false, fmt.Errorf("ports[%d].nodePort: %w", i, err)
			}
		}
		if svc.Type == NodePort && nodePort == 0 {
			svc.Notes = append(svc.Notes, fmt.Sprintf("ports[%d]: no nodePort assigned yet; nothing opened", i))
			continue
		}
		k := portKey{proto, port, nodePort}
		if !seenPort[k] {
			seenPort[k] = true
			svc.Ports = append(svc.Ports, Port{Protocol: proto, Port: port, NodePort: nodePort})
		}
	}
	for i, r := range spec.SourceRanges {
		prefix, err := ParsePrefix(strings.TrimSpace(r))
		if err != nil {
			return Service{}, false, fmt.Errorf("sourceRanges[%d]: %w", i, err)
		}
		svc.Sources = append(svc.Sources, prefix)
	}
	if svc.Type == LoadBalancer && len(svc.IPs) == 0 {
		// Never open the ports "to every destination" while the IP is pending.
		svc.Notes = append(svc.Notes, "no load-balancer IP assigned yet; nothing opened")
	}
	return svc, true, nil
}

// EffectiveSources returns the service's source ranges, or every address of both families.
func (s Service) EffectiveSources() []netip.Prefix {
	if len(s.Sources) == 0 {
		return []netip.Prefix{everyV4, everyV6}
	}
	return s.Sources
}
