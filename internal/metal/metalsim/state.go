package metalsim

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// state is the simulator's in-memory metal-api database. Every method
// expects Simulator.mu to be held.
type state struct {
	prov       Provisioning
	partitions map[string]*Partition
	sizes      map[string]*Size
	images     []Image
	projects   map[string]*Project
	networks   map[string]*simNetwork
	netOrder   []string
	machines   map[string]*machine
	created    time.Time
	timeline   []TimelineEvent
	faults     faultRules
	nextASN    int64
	extraSeq   int
}

// simNetwork is a network plus its IP allocator.
type simNetwork struct {
	Network
	prefixes []netip.Prefix
	// used maps an acquired address to the machine holding it.
	used map[netip.Addr]string
}

// machine is one simulated server.
type machine struct {
	id, partition, size, rack, chassis string
	created, changed                   time.Time
	stateValue                         string
	// waiting means the machine finished its pool boot and is allocatable.
	waiting    bool
	userTags   []string
	asn        int64
	allocation *metal.MachineAllocation

	// events is oldest first; the API shows newest first.
	events         []metal.MachineProvisioningEvent
	lastEventTime  time.Time
	lastErrorEvent *metal.MachineProvisioningEvent
	crashLoop      bool
	failedReclaim  bool
	// reclaiming is set between free and the next Waiting.
	reclaiming bool
	// installed is set once Phoned Home follows an install.
	installed bool

	// pending holds future lifecycle events, sorted by time.
	pending []scheduledEvent
	// heartbeatFrom anchors the periodic Alive heartbeats; zero when they
	// are stopped.
	heartbeatFrom time.Time
}

type scheduledEvent struct {
	at      time.Time
	event   string
	message string
}

// maxStoredEvents and maxResponseEvents match metal-api's limits.
const (
	maxStoredEvents   = 100
	maxResponseEvents = 20
)

func newState(cfg Config, now time.Time) (*state, error) {
	st := &state{
		prov:       cfg.Provisioning.withDefaults(),
		partitions: map[string]*Partition{},
		sizes:      map[string]*Size{},
		images:     slices.Clone(cfg.Images),
		projects:   map[string]*Project{},
		networks:   map[string]*simNetwork{},
		machines:   map[string]*machine{},
		created:    now,
		faults:     newFaultRules(),
		nextASN:    4210000000,
	}
	for i := range cfg.Partitions {
		st.partitions[cfg.Partitions[i].ID] = &cfg.Partitions[i]
	}
	for i := range cfg.Sizes {
		st.sizes[cfg.Sizes[i].ID] = &cfg.Sizes[i]
	}
	for i := range cfg.Projects {
		st.projects[cfg.Projects[i].ID] = &cfg.Projects[i]
	}
	for i := range st.images {
		if st.images[i].ExpirationDate.IsZero() {
			st.images[i].ExpirationDate = now.AddDate(1, 0, 0)
		}
	}
	for _, n := range cfg.Networks {
		sn := &simNetwork{Network: n, used: map[netip.Addr]string{}}
		for _, p := range n.Prefixes {
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("network %q: %w", n.ID, err)
			}
			sn.prefixes = append(sn.prefixes, pfx.Masked())
		}
		st.networks[n.ID] = sn
		st.netOrder = append(st.netOrder, n.ID)
	}
	for pi, pool := range cfg.Machines {
		for n := range pool.Count {
			st.addPoolMachine(pool, fmt.Sprintf("00000000-0000-4000-%04x-%012x", pi+1, n+1), now)
		}
	}
	return st, nil
}

// addPoolMachine creates a machine that already went through its pool boot
// and waits for allocation.
func (st *state) addPoolMachine(pool MachinePool, id string, now time.Time) {
	rack := pool.Rack
	if rack == "" {
		rack = "rack-1"
	}
	m := &machine{
		id: id, partition: pool.Partition, size: pool.Size, rack: rack,
		chassis: "chassis-" + id[len(id)-6:],
		created: now, changed: now,
	}
	step := st.prov.ReclaimStep.Duration
	boot := []string{metal.EventPXEBooting, metal.EventPreparing, metal.EventRegistering, metal.EventWaiting}
	for i, ev := range boot {
		st.applyEvent(m, ev, "", now.Add(-time.Duration(len(boot)-1-i)*step))
	}
	m.heartbeatFrom = now
	st.machines[id] = m
}

// sortedMachines returns machines ordered by id for deterministic answers.
func (st *state) sortedMachines() []*machine {
	out := make([]*machine, 0, len(st.machines))
	for _, m := range st.machines {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *machine) int {
		if a.id < b.id {
			return -1
		}
		if a.id > b.id {
			return 1
		}
		return 0
	})
	return out
}

// acquireIP hands out the next free host address of a network.
func (st *state) acquireIP(n *simNetwork, machineID string) (string, error) {
	for _, pfx := range n.prefixes {
		last := lastAddr(pfx)
		for a := pfx.Addr().Next(); a.IsValid() && pfx.Contains(a) && a != last; a = a.Next() {
			if _, taken := n.used[a]; !taken {
				n.used[a] = machineID
				return a.String(), nil
			}
		}
	}
	return "", fmt.Errorf("network %q has no free ip", n.ID)
}

func (st *state) releaseIPs(machineID string) {
	for _, n := range st.networks {
		for a, owner := range n.used {
			if owner == machineID {
				delete(n.used, a)
			}
		}
	}
}

// lastAddr returns the broadcast-like last address, which is never handed out.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().AsSlice()
	hostBits := a[:]
	ones := p.Bits()
	for i := range hostBits {
		for b := 0; b < 8; b++ {
			if i*8+b >= ones {
				hostBits[i] |= 0x80 >> b
			}
		}
	}
	out, _ := netip.AddrFromSlice(hostBits)
	return out
}

// hostCount is the number of assignable addresses of a network, capped to
// keep IPv6 sizes representable.
func hostCount(n *simNetwork) int64 {
	var total int64
	for _, p := range n.prefixes {
		bits := p.Addr().BitLen() - p.Bits()
		if bits >= 62 {
			return 1 << 62
		}
		total += (int64(1) << bits) - 2
	}
	return max(total, 0)
}

func (st *state) record(kind TimelineKind, m *machine, at time.Time, note string) {
	ev := TimelineEvent{Time: at, Kind: kind, MachineID: m.id, Note: note}
	if m.allocation != nil {
		ev.Hostname = m.allocation.Hostname
		ev.Name = m.allocation.Name
		ev.Project = m.allocation.Project
	}
	st.timeline = append(st.timeline, ev)
}
