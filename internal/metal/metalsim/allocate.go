package metalsim

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// plannedNetwork is one network an allocation will be attached to.
type plannedNetwork struct {
	net         *simNetwork
	autoAcquire bool
	networkType string
}

// allocateFirewall implements POST /v1/firewall/allocate with the checks of
// metal-api's createMachineAllocationSpec (400) and allocateMachine (404/422).
func (s *Simulator) allocateFirewall(rc *reqCtx) (any, error) {
	var req metal.FirewallCreateRequest
	if err := rc.decode(&req); err != nil {
		return nil, err
	}
	st := rc.st
	if len(req.Networks) == 0 {
		return nil, errBadRequest("networks must not be empty")
	}
	if st.partitions[req.PartitionID] == nil {
		return nil, errBadRequest("partition:%q not found", req.PartitionID)
	}
	if st.sizes[req.SizeID] == nil {
		return nil, errBadRequest("size:%q not found", req.SizeID)
	}
	img, ok := st.resolveImage(req.ImageID)
	if !ok {
		return nil, errBadRequest("image:%q not found", req.ImageID)
	}
	if !hasAllFeatures(img, []string{metal.ImageFeatureFirewall}) {
		return nil, errBadRequest("given image %q is not usable for a firewall, features: %v", img.ID, img.Features)
	}
	rules, err := normalizeRules(req.FirewallRules)
	if err != nil {
		return nil, errBadRequest("firewall rules: %v", err)
	}
	if st.projects[req.ProjectID] == nil {
		return nil, errNotFound("project with id %q not found", req.ProjectID)
	}
	for _, k := range req.SSHPubKeys {
		if !validSSHKey(k) {
			return nil, errUnprocessable("invalid public SSH key: %q", truncate(k, 40))
		}
	}
	plan, err := st.planNetworks(&req)
	if err != nil {
		return nil, err
	}
	m := st.pickMachine(req.UUID, req.PartitionID, req.SizeID, rc.now)
	if m == nil {
		return nil, errUnprocessable("no machine available in partition %q with size %q", req.PartitionID, req.SizeID)
	}
	if err := st.allocate(m, &req, img, rules, plan, creatorFor(rc.authType), rc.now); err != nil {
		return nil, err
	}
	if st.faults.duplicateAllocate > 0 {
		st.faults.duplicateAllocate--
		if twin := st.pickMachine("", req.PartitionID, req.SizeID, rc.now); twin != nil {
			if err := st.allocate(twin, &req, img, rules, plan, creatorFor(rc.authType), rc.now); err == nil {
				st.timeline[len(st.timeline)-1].Note = "injected duplicate"
			}
		}
	}
	resp := s.render(rc, m)
	if st.faults.loseAllocate > 0 {
		st.faults.loseAllocate--
		for i := len(st.timeline) - 1; i >= 0; i-- {
			if st.timeline[i].MachineID == m.id && st.timeline[i].Kind == TimelineAllocated {
				st.timeline[i].Note = "response lost"
				break
			}
		}
		return nil, newAPIError(http.StatusInternalServerError, "injected failure after allocation (response lost)")
	}
	return resp, nil
}

// planNetworks applies metal-api's gatherNetworksFromSpec rules for firewalls.
func (st *state) planNetworks(req *metal.FirewallCreateRequest) ([]plannedNetwork, error) {
	seen := map[string]bool{}
	var plan []plannedNetwork
	privates := 0
	anyAuto := len(req.IPs) > 0
	for _, an := range req.Networks {
		if seen[an.NetworkID] {
			return nil, errUnprocessable("given network ids are not unique")
		}
		seen[an.NetworkID] = true
		n := st.networks[an.NetworkID]
		if n == nil {
			return nil, errNotFound("network with id %q not found", an.NetworkID)
		}
		if n.Underlay || n.PrivateSuper {
			return nil, errUnprocessable("underlay or privatesuper network %q must not be given", n.ID)
		}
		p := plannedNetwork{net: n, autoAcquire: an.AutoAcquire == nil || *an.AutoAcquire}
		switch {
		case n.ParentNetworkID != "" && !n.Shared:
			privates++
			if n.ProjectID != req.ProjectID {
				return nil, errUnprocessable("private network %q does not belong to project %q", n.ID, req.ProjectID)
			}
			if n.PartitionID != req.PartitionID {
				return nil, errUnprocessable("private network %q is not in partition %q", n.ID, req.PartitionID)
			}
			p.networkType = metal.NetworkTypePrivatePrimaryUnshared
		case n.ParentNetworkID != "":
			p.networkType = metal.NetworkTypePrivateSecondaryShared
		default:
			p.networkType = metal.NetworkTypeExternal
		}
		anyAuto = anyAuto || p.autoAcquire
		plan = append(plan, p)
	}
	if privates != 1 {
		return nil, errUnprocessable("exactly one private network must be given, got %d", privates)
	}
	if !anyAuto {
		return nil, errUnprocessable("at least one network must be auto acquired or ips must be given")
	}
	for _, id := range st.netOrder {
		if n := st.networks[id]; n.Underlay && n.PartitionID == req.PartitionID {
			plan = append(plan, plannedNetwork{net: n, autoAcquire: true, networkType: metal.NetworkTypeUnderlay})
			break
		}
	}
	return plan, nil
}

// pickMachine returns the requested or first allocatable machine.
func (st *state) pickMachine(uuid, partition, size string, now time.Time) *machine {
	for _, m := range st.sortedMachines() {
		if uuid != "" && m.id != uuid {
			continue
		}
		if m.partition == partition && m.size == size && st.allocatable(m, now) {
			return m
		}
	}
	return nil
}

// allocate turns a pool machine into an allocated firewall and starts its install.
func (st *state) allocate(m *machine, req *metal.FirewallCreateRequest, img *Image, rules *metal.FirewallRules,
	plan []plannedNetwork, creator string, now time.Time) error {
	st.nextASN++
	m.asn = st.nextASN
	hostname := req.Hostname
	if hostname == "" {
		hostname = "metal"
	}
	alloc := &metal.MachineAllocation{
		Created: now, Creator: creator,
		Name: req.Name, Hostname: hostname, Description: req.Description,
		Project:        req.ProjectID,
		Image:          st.renderImage(img),
		Networks:       []metal.MachineNetwork{},
		SSHPubKeys:     nonNil(req.SSHPubKeys),
		UserData:       req.UserData,
		Role:           metal.RoleFirewall,
		AllocationUUID: newUUID(),
		FirewallRules:  rules,
		DNSServers:     slices.Clone(req.DNSServers),
		NTPServers:     slices.Clone(req.NTPServers),
	}
	if p := st.partitions[req.PartitionID]; p != nil {
		if len(alloc.DNSServers) == 0 {
			for _, ip := range p.DNSServers {
				alloc.DNSServers = append(alloc.DNSServers, metal.DNSServer{IP: ip})
			}
		}
		if len(alloc.NTPServers) == 0 {
			for _, a := range p.NTPServers {
				alloc.NTPServers = append(alloc.NTPServers, metal.NTPServer{Address: a})
			}
		}
	}
	for _, p := range plan {
		mn, err := st.attach(m, p, req.IPs)
		if err != nil {
			st.releaseIPs(m.id)
			return err
		}
		alloc.Networks = append(alloc.Networks, mn)
	}
	m.allocation = alloc
	m.userTags = dedupe(req.Tags)
	m.waiting = false
	m.reclaiming = false
	m.installed = false
	m.changed = now
	st.scheduleInstall(m, now)
	if st.matchesAny(m, st.faults.noHeartbeat) {
		st.stopHeartbeat(m, now)
	}
	st.record(TimelineAllocated, m, now, "")
	return nil
}

// attach acquires the addresses of one network for m.
func (st *state) attach(m *machine, p plannedNetwork, explicit []string) (metal.MachineNetwork, error) {
	n := p.net
	mn := metal.MachineNetwork{
		NetworkID:           n.ID,
		Prefixes:            nonNil(n.Prefixes),
		IPs:                 []string{},
		DestinationPrefixes: nonNil(n.DestinationPrefixes),
		VRF:                 n.VRF,
		NAT:                 n.NAT,
		Private:             n.ParentNetworkID != "",
		Underlay:            n.Underlay,
		NetworkType:         p.networkType,
		NetworkTypeV2:       p.networkType,
		NATTypeV2:           n.natType(),
		ProjectID:           n.ProjectID,
	}
	if p.networkType == metal.NetworkTypePrivatePrimaryUnshared || n.Underlay {
		mn.ASN = m.asn
	}
	for _, ipStr := range explicit {
		ip, err := netip.ParseAddr(ipStr)
		if err != nil || !n.contains(ip) {
			continue
		}
		if owner, taken := n.used[ip]; taken && owner != m.id {
			return mn, newAPIError(http.StatusConflict, "ip %s is already allocated", ip)
		}
		n.used[ip] = m.id
		mn.IPs = append(mn.IPs, ip.String())
	}
	if p.autoAcquire && len(mn.IPs) == 0 {
		ip, err := st.acquireIP(n, m.id)
		if err != nil {
			return mn, errUnprocessable("%v", err)
		}
		mn.IPs = append(mn.IPs, ip)
	}
	return mn, nil
}

func (n *simNetwork) contains(ip netip.Addr) bool {
	for _, p := range n.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func creatorFor(authType string) string {
	switch authType {
	case metal.AuthTypeView:
		return "metal-view@metal-stack.io"
	case metal.AuthTypeEdit:
		return "metal-edit@metal-stack.io"
	case metal.AuthTypeAdmin:
		return "metal-admin@metal-stack.io"
	}
	return "metalsim@metal-stack.io"
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func dedupe(in []string) []string {
	out := []string{}
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
