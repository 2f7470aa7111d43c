package metalsim

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// deepCopy clones a value through JSON, which is exactly the view a client
// gets, so snapshots can never alias simulator state.
func deepCopy[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("metalsim: deep copy: %v", err))
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("metalsim: deep copy: %v", err))
	}
	return out
}

// machineTags returns user tags plus the system labels metal-api adds to
// allocated machines.
func (m *machine) tags() []string {
	if m.allocation == nil {
		return []string{}
	}
	tags := slices.Clone(m.userTags)
	system := []string{
		fmt.Sprintf("%s=%d", metal.TagPrimaryASN, m.asn),
		metal.TagRack + "=" + m.rack,
		metal.TagChassis + "=" + m.chassis,
	}
	for _, t := range system {
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags
}

// renderMachine builds the API view of m. maxEvents limits the log (0 = all).
func (st *state) renderMachine(m *machine, now time.Time, maxEvents int, shuffle bool) *metal.MachineResponse {
	resp := &metal.MachineResponse{
		ID:        m.id,
		Created:   m.created,
		Changed:   m.changed,
		RackID:    m.rack,
		Partition: st.renderPartition(st.partitions[m.partition]),
		Size:      st.renderSize(st.sizes[m.size]),
		Hardware:  st.renderHardware(m),
		BIOS:      metal.MachineBIOS{Vendor: "metalsim", Version: "1.0", Date: "2024-01-01"},
		State: metal.MachineState{
			Value:              m.stateValue,
			Description:        stateDescription(m.stateValue),
			MetalHammerVersion: "v0.13.0-sim",
		},
		LEDState:   metal.ChassisIdentifyLEDState{Value: "LED-OFF", Description: ""},
		Liveliness: st.liveliness(m, now),
		Tags:       m.tags(),
		Events: metal.MachineRecentProvisioningEvents{
			Log:                  []metal.MachineProvisioningEvent{},
			LastEventTime:        st.lastSeen(m, now),
			CrashLoop:            m.crashLoop,
			FailedMachineReclaim: m.failedReclaim,
		},
	}
	for i := len(m.events) - 1; i >= 0; i-- {
		if maxEvents > 0 && len(resp.Events.Log) == maxEvents {
			break
		}
		resp.Events.Log = append(resp.Events.Log, m.events[i])
	}
	if m.lastErrorEvent != nil {
		ev := *m.lastErrorEvent
		resp.Events.LastErrorEvent = &ev
	}
	if m.allocation != nil {
		alloc := deepCopy(*m.allocation)
		resp.Allocation = &alloc
		resp.Name = alloc.Name
		resp.Description = alloc.Description
	}
	if shuffle {
		rand.Shuffle(len(resp.Tags), func(i, j int) { resp.Tags[i], resp.Tags[j] = resp.Tags[j], resp.Tags[i] })
	}
	return resp
}

func stateDescription(v string) string {
	if v == metal.StateLocked {
		return "locked by metalsim"
	}
	return ""
}

func (st *state) renderHardware(m *machine) metal.MachineHardware {
	hw := metal.MachineHardware{
		Disks: []metal.MachineBlockDevice{},
		Nics: []metal.MachineNic{
			{Name: "lan0", MAC: "aa:00:00:00:00:01", Identifier: "lan0", Neighbors: []metal.MachineNic{}},
			{Name: "lan1", MAC: "aa:00:00:00:00:02", Identifier: "lan1", Neighbors: []metal.MachineNic{}},
		},
	}
	if sz := st.sizes[m.size]; sz != nil {
		hw.CPUCores = int32(sz.CPUCores)
		hw.Memory = sz.MemoryBytes
		hw.Disks = append(hw.Disks, metal.MachineBlockDevice{Name: "/dev/nvme0n1", Size: sz.DiskBytes})
	}
	return hw
}

func (st *state) renderPartition(p *Partition) *metal.PartitionResponse {
	if p == nil {
		return nil
	}
	resp := &metal.PartitionResponse{
		ID: p.ID, Name: p.Name, Description: p.Description,
		BootConfig: metal.PartitionBootConfiguration{
			ImageURL:    "http://images.metalsim.invalid/metal-hammer.img",
			KernelURL:   "http://images.metalsim.invalid/metal-hammer-kernel",
			CommandLine: "console=ttyS1,115200n8",
		},
		MgmtServiceAddress: "mgmt.metalsim.invalid:5222",
		Labels:             maps.Clone(p.Labels),
		Created:            st.created,
		Changed:            st.created,
	}
	for _, ip := range p.DNSServers {
		resp.DNSServers = append(resp.DNSServers, metal.DNSServer{IP: ip})
	}
	for _, a := range p.NTPServers {
		resp.NTPServers = append(resp.NTPServers, metal.NTPServer{Address: a})
	}
	return resp
}

func (st *state) renderSize(s *Size) *metal.SizeResponse {
	if s == nil {
		return nil
	}
	return &metal.SizeResponse{
		ID: s.ID, Name: s.Name, Description: s.Description,
		Constraints: []metal.SizeConstraint{
			{Type: "cores", Min: s.CPUCores, Max: s.CPUCores},
			{Type: "memory", Min: s.MemoryBytes, Max: s.MemoryBytes},
			{Type: "storage", Min: s.DiskBytes, Max: s.DiskBytes},
		},
		Labels:  map[string]string{},
		Created: st.created,
		Changed: st.created,
	}
}

func (st *state) renderImage(img *Image) *metal.ImageResponse {
	return &metal.ImageResponse{
		ID: img.ID, Name: img.Name, Description: img.Description, URL: img.URL,
		Features:       slices.Clone(img.Features),
		Classification: img.Classification,
		ExpirationDate: img.ExpirationDate,
		Created:        st.created,
		Changed:        st.created,
	}
}

func (st *state) renderProject(p *Project) *metal.ProjectResponse {
	return &metal.ProjectResponse{
		Meta: &metal.Meta{
			ID: p.ID, Kind: "Project", APIVersion: "v1", Version: 1,
			CreatedTime: st.created, UpdatedTime: st.created,
		},
		Name: p.Name, Description: p.Description, TenantID: p.TenantID,
	}
}

// networkType classifies a network as metal-api's networktype field does.
func (n *simNetwork) networkType() string {
	switch {
	case n.Underlay:
		return metal.NetworkTypeUnderlay
	case n.PrivateSuper:
		return "privatesuper"
	case n.ParentNetworkID != "" && n.Shared:
		return metal.NetworkTypePrivatePrimaryShared
	case n.ParentNetworkID != "":
		return metal.NetworkTypePrivatePrimaryUnshared
	default:
		return metal.NetworkTypeExternal
	}
}

func (n *simNetwork) natType() string {
	if n.NAT {
		return "ipv4-masquerade"
	}
	return "none"
}

func (st *state) renderNetwork(n *simNetwork) *metal.NetworkResponse {
	usage := metal.NetworkUsage{
		AvailableIPs: hostCount(n),
		UsedIPs:      int64(len(n.used)),
	}
	v4 := usage
	resp := &metal.NetworkResponse{
		ID: n.ID, Name: n.Name, Description: n.Description,
		PartitionID: n.PartitionID, ProjectID: n.ProjectID, ParentNetworkID: n.ParentNetworkID,
		Prefixes:            nonNil(n.Prefixes),
		DestinationPrefixes: nonNil(n.DestinationPrefixes),
		NAT:                 n.NAT, PrivateSuper: n.PrivateSuper, Underlay: n.Underlay, Shared: n.Shared,
		VRF:         n.VRF,
		Labels:      maps.Clone(n.Labels),
		Usage:       usage,
		Consumption: metal.NetworkConsumption{IPv4: &v4},
		NetworkType: n.networkType(),
		NATType:     n.natType(),
		Created:     st.created,
		Changed:     st.created,
	}
	if n.PrivateSuper {
		resp.DefaultChildPrefixLength = map[string]int64{"IPv4": 22}
	}
	return resp
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
