package metalsim

import (
	"slices"

	"github.com/palisade-fw/palisade/internal/metal"
)

// Read-only endpoints: get, list and find.

func (rc *reqCtx) id() string { return rc.r.PathValue("id") }

func (s *Simulator) render(rc *reqCtx, m *machine) *metal.MachineResponse {
	return rc.st.renderMachine(m, rc.now, maxResponseEvents, rc.st.faults.shuffleTags)
}

func (s *Simulator) getMachine(rc *reqCtx) (any, error) {
	m := rc.st.machines[rc.id()]
	if m == nil {
		return nil, errNotFound("no machine with id %q found", rc.id())
	}
	return s.render(rc, m), nil
}

func (s *Simulator) getFirewall(rc *reqCtx) (any, error) {
	m := rc.st.machines[rc.id()]
	if m == nil {
		return nil, errNotFound("no machine with id %q found", rc.id())
	}
	if m.allocation == nil || m.allocation.Role != metal.RoleFirewall {
		return nil, errNotFound("machine is not a firewall")
	}
	return s.render(rc, m), nil
}

func (s *Simulator) findMachines(rc *reqCtx) (any, error) {
	var q metal.MachineFindRequest
	if err := rc.decode(&q); err != nil {
		return nil, err
	}
	return s.findMachinesMatching(rc, &q), nil
}

func (s *Simulator) findFirewalls(rc *reqCtx) (any, error) {
	var q metal.FirewallFindRequest
	if err := rc.decode(&q); err != nil {
		return nil, err
	}
	q.AllocationRole = metal.RoleFirewall // the server forces it
	mq := metal.MachineFindRequest(q)
	return s.findMachinesMatching(rc, &mq), nil
}

func (s *Simulator) listFirewalls(rc *reqCtx) (any, error) {
	return s.findMachinesMatching(rc, &metal.MachineFindRequest{AllocationRole: metal.RoleFirewall}), nil
}

func (s *Simulator) findMachinesMatching(rc *reqCtx, q *metal.MachineFindRequest) []*metal.MachineResponse {
	out := []*metal.MachineResponse{}
	for _, m := range rc.st.sortedMachines() {
		if machineMatches(m, q) {
			out = append(out, s.render(rc, m))
		}
	}
	return out
}

// machineMatches ANDs all set filters. Allocation filters never match a
// free machine.
func machineMatches(m *machine, q *metal.MachineFindRequest) bool {
	a := m.allocation
	name := ""
	if a != nil {
		name = a.Name
	}
	if !eqIfSet(q.ID, m.id) || !eqIfSet(q.Name, name) || !eqIfSet(q.PartitionID, m.partition) ||
		!eqIfSet(q.SizeID, m.size) || !eqIfSet(q.RackID, m.rack) {
		return false
	}
	if q.StateValue != "" && q.StateValue != m.stateValue {
		return false
	}
	if !containsAll(m.tags(), q.Tags) {
		return false
	}
	needsAlloc := q.AllocationName != "" || q.AllocationProject != "" || q.AllocationHostname != "" ||
		q.AllocationImageID != "" || q.AllocationRole != "" || q.AllocationSucceeded != nil ||
		len(q.NetworkIDs)+len(q.NetworkIPs)+len(q.NetworkPrefixes)+len(q.NetworkDestinationPrefixes)+
			len(q.NetworkVRFs)+len(q.NetworkASNs) > 0
	if a == nil {
		return !needsAlloc
	}
	imageID := ""
	if a.Image != nil {
		imageID = a.Image.ID
	}
	if !eqIfSet(q.AllocationName, a.Name) || !eqIfSet(q.AllocationProject, a.Project) ||
		!eqIfSet(q.AllocationHostname, a.Hostname) || !eqIfSet(q.AllocationImageID, imageID) ||
		!eqIfSet(q.AllocationRole, a.Role) {
		return false
	}
	if q.AllocationSucceeded != nil && *q.AllocationSucceeded != a.Succeeded {
		return false
	}
	var ids, ips, prefixes, dest []string
	var vrfs, asns []int64
	for _, n := range a.Networks {
		ids = append(ids, n.NetworkID)
		ips = append(ips, n.IPs...)
		prefixes = append(prefixes, n.Prefixes...)
		dest = append(dest, n.DestinationPrefixes...)
		vrfs = append(vrfs, n.VRF)
		asns = append(asns, n.ASN)
	}
	return containsAll(ids, q.NetworkIDs) && containsAll(ips, q.NetworkIPs) &&
		containsAll(prefixes, q.NetworkPrefixes) && containsAll(dest, q.NetworkDestinationPrefixes) &&
		containsAll(vrfs, q.NetworkVRFs) && containsAll(asns, q.NetworkASNs)
}

func eqIfSet(filter, value string) bool { return filter == "" || filter == value }

func containsAll[T comparable](have, want []T) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func (s *Simulator) getImage(rc *reqCtx) (any, error) {
	img, ok := rc.st.imageByID(rc.id())
	if !ok {
		return nil, errNotFound("no image with id %q found", rc.id())
	}
	return rc.st.renderImage(img), nil
}

func (s *Simulator) getLatestImage(rc *reqCtx) (any, error) {
	img, ok := rc.st.resolveImage(rc.id())
	if !ok {
		return nil, errNotFound("no image for id:%q found", rc.id())
	}
	return rc.st.renderImage(img), nil
}

func (s *Simulator) listImages(rc *reqCtx) (any, error) {
	return s.imagesMatching(rc, &metal.ImageFindRequest{}), nil
}

func (s *Simulator) findImages(rc *reqCtx) (any, error) {
	var q metal.ImageFindRequest
	if err := rc.decode(&q); err != nil {
		return nil, err
	}
	return s.imagesMatching(rc, &q), nil
}

func (s *Simulator) imagesMatching(rc *reqCtx, q *metal.ImageFindRequest) []*metal.ImageResponse {
	out := []*metal.ImageResponse{}
	for i := range rc.st.images {
		img := &rc.st.images[i]
		v, _ := parseImageID(img.ID)
		version := img.ID[len(v.os)+1:]
		if eqIfSet(q.ID, img.ID) && eqIfSet(q.Name, img.Name) && eqIfSet(q.OS, v.os) &&
			eqIfSet(q.Version, version) && eqIfSet(q.Classification, img.Classification) &&
			hasAllFeatures(img, q.Features) {
			out = append(out, rc.st.renderImage(img))
		}
	}
	return out
}

func (s *Simulator) getNetwork(rc *reqCtx) (any, error) {
	n := rc.st.networks[rc.id()]
	if n == nil {
		return nil, errNotFound("no network with id %q found", rc.id())
	}
	return rc.st.renderNetwork(n), nil
}

func (s *Simulator) listNetworks(rc *reqCtx) (any, error) {
	return s.networksMatching(rc, &metal.NetworkFindRequest{}), nil
}

func (s *Simulator) findNetworks(rc *reqCtx) (any, error) {
	var q metal.NetworkFindRequest
	if err := rc.decode(&q); err != nil {
		return nil, err
	}
	return s.networksMatching(rc, &q), nil
}

func (s *Simulator) networksMatching(rc *reqCtx, q *metal.NetworkFindRequest) []*metal.NetworkResponse {
	out := []*metal.NetworkResponse{}
	for _, id := range rc.st.netOrder {
		n := rc.st.networks[id]
		if networkMatches(n, q) {
			out = append(out, rc.st.renderNetwork(n))
		}
	}
	return out
}

func networkMatches(n *simNetwork, q *metal.NetworkFindRequest) bool {
	if !eqIfSet(q.ID, n.ID) || !eqIfSet(q.Name, n.Name) || !eqIfSet(q.PartitionID, n.PartitionID) ||
		!eqIfSet(q.ProjectID, n.ProjectID) || !eqIfSet(q.ParentNetworkID, n.ParentNetworkID) {
		return false
	}
	if q.VRF != nil && *q.VRF != n.VRF || q.NAT != nil && *q.NAT != n.NAT ||
		q.PrivateSuper != nil && *q.PrivateSuper != n.PrivateSuper || q.Underlay != nil && *q.Underlay != n.Underlay {
		return false
	}
	if !containsAll(n.Prefixes, q.Prefixes) || !containsAll(n.DestinationPrefixes, q.DestinationPrefixes) {
		return false
	}
	for k, v := range q.Labels {
		if have, ok := n.Labels[k]; !ok || have != v {
			return false
		}
	}
	if q.AddressFamily != "" {
		want6 := q.AddressFamily == "IPv6"
		for _, p := range n.prefixes {
			if p.Addr().Is6() != want6 {
				return false
			}
		}
	}
	return true
}

func (s *Simulator) getSize(rc *reqCtx) (any, error) {
	sz := rc.st.sizes[rc.id()]
	if sz == nil {
		return nil, errNotFound("no size with id %q found", rc.id())
	}
	return rc.st.renderSize(sz), nil
}

func (s *Simulator) getPartition(rc *reqCtx) (any, error) {
	p := rc.st.partitions[rc.id()]
	if p == nil {
		return nil, errNotFound("no partition with id %q found", rc.id())
	}
	return rc.st.renderPartition(p), nil
}

func (s *Simulator) getProject(rc *reqCtx) (any, error) {
	p := rc.st.projects[rc.id()]
	if p == nil {
		return nil, errNotFound("project with id %q not found", rc.id())
	}
	return rc.st.renderProject(p), nil
}
