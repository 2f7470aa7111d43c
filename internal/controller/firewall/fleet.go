package firewall

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
)

// Fleet caches the managed firewall machines of each project and partition, so that steady-state
// polling costs one metal-api find per project and partition per interval, however many
// firewalls there are. Concurrent callers for the same partition share one request.
type Fleet struct {
	metal metal.Client
	now   func() time.Time
	// idle entries are dropped after this long, so the cache stays bounded by what is in use.
	idle time.Duration

	mu      sync.Mutex
	entries map[fleetKey]*fleetEntry
	// changes receives the firewalls whose machine changed in a fetch (fan-out): a poll for one
	// firewall brings news to all firewalls of its partition at once.
	changes chan event.GenericEvent
	// watched are the partitions polled by a poller of their own (Watch), until when.
	watched map[fleetKey]*watchedPartition
}

type watchedPartition struct{ until time.Time }

type fleetKey struct{ project, partition string }

type fleetEntry struct {
	mu       sync.Mutex // held while fetching, so concurrent callers wait for one request
	fetched  time.Time
	used     time.Time
	machines []*metal.FirewallResponse
	// provisioning is the allocation-to-phone-home time of the machine allocated last among
	// those that phoned home (allocated then), for the creating poll.
	provisioning atomic.Int64 // nanoseconds; read without waiting for a fetch in flight
	allocated    time.Time
}

// learn keeps the provisioning time of the newest allocation that phoned home. Callers hold mu.
func (e *fleetEntry) learn(machines []*metal.FirewallResponse) {
	for _, m := range machines {
		if d := provisioningTime(m); d > 0 && m.Allocation.Created.After(e.allocated) {
			e.provisioning.Store(int64(d))
			e.allocated = m.Allocation.Created
		}
	}
}

// Provisioning returns how long the last machine of the firewall's project and partition took
// from allocation to phone-home, or 0 when none was seen yet.
func (f *Fleet) Provisioning(fw *v2.Firewall) time.Duration {
	entry := f.entry(fleetKey{project: fw.Spec.Project, partition: fw.Spec.Partition})
	return time.Duration(entry.provisioning.Load())
}

// NewFleet returns an empty fleet cache.
func NewFleet(client metal.Client, now func() time.Time) *Fleet {
	if now == nil {
		now = time.Now
	}
	return &Fleet{metal: client, now: now, idle: 15 * time.Minute, entries: map[fleetKey]*fleetEntry{},
		changes: make(chan event.GenericEvent, 1024)}
}

// Changes is a watch source for the firewall controller: firewalls whose machine changed in
// another firewall's fetch.
func (f *Fleet) Changes() source.Source {
	return source.Channel(f.changes, &handler.EnqueueRequestForObject{})
}

// announce sends the firewalls whose machine state differs between two fetches. It never
// blocks: a dropped announcement only means the firewall learns at its own next poll.
func (f *Fleet) announce(before, after []*metal.FirewallResponse) {
	seen := make(map[string]string, len(before))
	for _, m := range before {
		seen[m.ID] = machineState(m)
	}
	for _, m := range after {
		if state, ok := seen[m.ID]; ok && state == machineState(m) {
			continue
		}
		ns, tagged := tagValue(m.Tags, v2.NamespaceTag)
		if !tagged || m.Allocation == nil {
			continue // upstream machines: their firewalls poll on their own
		}
		fw := &v2.Firewall{}
		fw.Namespace, fw.Name = ns, m.Allocation.Name
		select {
		case f.changes <- event.GenericEvent{Object: fw}:
		default:
		}
	}
}

// machineState is what a firewall's status reflects of its machine, without the heartbeat
// time (which changes on every fetch).
func machineState(m *metal.FirewallResponse) string {
	last := ""
	if len(m.Events.Log) > 0 {
		last = m.Events.Log[0].Event
	}
	return fmt.Sprintf("%s|%s|%d|%v|%v|%s", m.Liveliness, last, len(m.Events.Log), m.Events.CrashLoop, m.Events.FailedMachineReclaim, strings.Join(m.Tags, ","))
}

// Lookup returns the machines allocated for the firewall (same name and project, managed by us,
// and not tagged for another namespace), from data at most maxAge old. maxAge 0 forces a fresh
// request of the whole partition; before an allocation or a free, Refresh asks for the one firewall.
func (f *Fleet) Lookup(ctx context.Context, fw *v2.Firewall, maxAge time.Duration) ([]*metal.FirewallResponse, error) {
	key := fleetKey{project: fw.Spec.Project, partition: fw.Spec.Partition}
	entry := f.entry(key)

	entry.mu.Lock()
	defer entry.mu.Unlock()
	entry.used = f.now()
	if err := f.fetch(ctx, key, entry, maxAge); err != nil {
		return nil, err
	}
	return belongingTo(entry.machines, fw), nil
}

// fetch asks metal-api for the partition when the cached data is older than maxAge, and hands
// what changed to the firewalls concerned. Callers hold entry.mu.
func (f *Fleet) fetch(ctx context.Context, key fleetKey, entry *fleetEntry, maxAge time.Duration) error {
	if !entry.fetched.IsZero() && f.now().Sub(entry.fetched) < maxAge {
		return nil
	}
	machines, err := f.metal.FindFirewalls(ctx, &metal.FirewallFindRequest{
		AllocationProject: key.project,
		PartitionID:       key.partition,
		Tags:              []string{v2.ManagedByTag + "=" + v2.ManagedByValue},
	})
	if err != nil {
		return err
	}
	if !entry.fetched.IsZero() {
		f.announce(entry.machines, machines)
	}
	entry.machines = machines
	entry.fetched = f.now()
	entry.learn(machines)
	return nil
}

// Watch fetches the firewall's partition every interval for the given time (extended by later
// calls), from a poller of its own: the fan-out brings each phone-home to its firewall within an
// interval, however many firewalls wait, and the firewalls need not requeue themselves that
// often (a requeue per firewall and interval would flood the controller's queue in a fleet
// roll). The poller ends with its time; it holds no resources beyond it.
func (f *Fleet) Watch(fw *v2.Firewall, interval, d time.Duration) {
	if interval <= 0 || d <= 0 {
		return
	}
	key := fleetKey{project: fw.Spec.Project, partition: fw.Spec.Partition}
	until := time.Now().Add(d) // real time: the poller's ticker runs on it
	f.mu.Lock()
	if f.watched == nil {
		f.watched = map[fleetKey]*watchedPartition{}
	}
	if w, ok := f.watched[key]; ok {
		if until.After(w.until) {
			w.until = until
		}
		f.mu.Unlock()
		return
	}
	w := &watchedPartition{until: until}
	f.watched[key] = w
	f.mu.Unlock()
	go f.poll(key, w, interval)
}

func (f *Fleet) poll(key fleetKey, w *watchedPartition, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for range t.C {
		f.mu.Lock()
		if !time.Now().Before(w.until) {
			delete(f.watched, key)
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		entry := f.entry(key)
		ctx, cancel := context.WithTimeout(context.Background(), max(10*interval, 10*time.Second))
		entry.mu.Lock()
		// Half an interval: a firewall's own lookup a moment ago counts.
		_ = f.fetch(ctx, key, entry, interval/2) // an error: the next tick, or the firewalls' own polls
		entry.mu.Unlock()
		cancel()
	}
}

// Invalidate makes the next lookup of the firewall's partition fetch fresh data.
func (f *Fleet) Invalidate(fw *v2.Firewall) {
	entry := f.entry(fleetKey{project: fw.Spec.Project, partition: fw.Spec.Partition})
	entry.mu.Lock()
	entry.fetched = time.Time{}
	entry.mu.Unlock()
}

// Refresh asks metal-api afresh for the firewall's own machines only (by allocation name,
// project, partition and managed-by tag) and stores the answer in the partition's cache. It is
// the check before every allocation and free: one small request instead of a find over the whole
// partition, and the cached partition data stays good for every other firewall.
func (f *Fleet) Refresh(ctx context.Context, fw *v2.Firewall) ([]*metal.FirewallResponse, error) {
	machines, err := f.metal.FindFirewalls(ctx, &metal.FirewallFindRequest{
		AllocationName:    fw.Name,
		AllocationProject: fw.Spec.Project,
		PartitionID:       fw.Spec.Partition,
		Tags:              []string{v2.ManagedByTag + "=" + v2.ManagedByValue},
	})
	if err != nil {
		return nil, err
	}
	own := belongingTo(machines, fw)
	f.Store(fw, own...)
	return own, nil
}

// Store replaces the firewall's machines in the cached partition data with machines (none after
// a free), so that an allocation, update or free is seen by the next lookup without a new find
// of the whole partition. It waits for a find in flight, so the newer answer wins.
func (f *Fleet) Store(fw *v2.Firewall, machines ...*metal.FirewallResponse) {
	entry := f.entry(fleetKey{project: fw.Spec.Project, partition: fw.Spec.Partition})
	entry.mu.Lock()
	defer entry.mu.Unlock()
	entry.learn(machines)
	if entry.fetched.IsZero() {
		return // nothing cached: the next lookup fetches anyway
	}
	old := map[*metal.FirewallResponse]bool{}
	for _, m := range belongingTo(entry.machines, fw) {
		old[m] = true
	}
	updated := make([]*metal.FirewallResponse, 0, len(entry.machines)+len(machines))
	for _, m := range entry.machines {
		if !old[m] {
			updated = append(updated, m)
		}
	}
	entry.machines = append(updated, machines...)
}

func (f *Fleet) entry(key fleetKey) *fleetEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for k, e := range f.entries {
		if k != key && e.mu.TryLock() {
			if now.Sub(e.used) > f.idle {
				delete(f.entries, k)
			}
			e.mu.Unlock()
		}
	}
	e, ok := f.entries[key]
	if !ok {
		e = &fleetEntry{used: now}
		f.entries[key] = e
	}
	return e
}

// belongingTo filters machines down to the firewall's own: allocated under its name and, when
// tagged with a namespace, tagged with its namespace (machines allocated by the upstream manager
// carry no namespace tag and are adopted).
func belongingTo(machines []*metal.FirewallResponse, fw *v2.Firewall) []*metal.FirewallResponse {
	var own []*metal.FirewallResponse
	for _, m := range machines {
		if m.Allocation == nil || m.Allocation.Name != fw.Name {
			continue
		}
		if ns, ok := tagValue(m.Tags, v2.NamespaceTag); ok && ns != fw.Namespace {
			continue
		}
		own = append(own, m)
	}
	return own
}

func tagValue(tags []string, key string) (string, bool) {
	for _, t := range tags {
		if k, v, found := strings.Cut(t, "="); found && k == key {
			return v, true
		}
	}
	return "", false
}
