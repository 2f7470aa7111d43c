// Package report tells the manager how the agent is doing: after every sync and at a
// bounded rate it writes status.controllerStatus of the seed Firewall and controllerStatus
// of the FirewallMonitor in the workload cluster, and it configures the BGP distance the
// Firewall asks for.
package report

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-fw/palisade/internal/agent/runner"
	"github.com/palisade-fw/palisade/internal/version"
)

// Version is the agent's version as reported in the status: the build's stamp
// (internal/version, set by `make release`); tests may override it.
var Version = version.Version

// maxMessage bounds the error text copied into a status.
const maxMessage = 1024

// State is what the agent reports.
type State struct {
	Version string
	// Synced is false until the first sync; nothing is reported before.
	Synced       bool
	RulesApplied bool
	Message      string
	// ObservedGeneration is the seed Firewall generation whose ruleset the kernel holds; 0
	// when unknown (then the reports leave the previous value in place).
	ObservedGeneration int64
	// LastRun is when the kernel was last known to hold the rules of the current spec:
	// the last successful sync, refreshed by every periodic check that they are still there.
	LastRun time.Time
	// LastRunAgainstSeed is when the agent last synced with the seed Firewall's spec
	// (refreshed periodically while those rules stay applied).
	LastRunAgainstSeed time.Time
	Distance           uint8
	DistanceSupported  bool
	// Notes are problems of the host parts (self-update, SSH keys, egress addresses, IDS)
	// by topic; they are appended to Message.
	Notes map[string]string
	// Conditions are the agent's own conditions (RulesetInSync, internal/agent/drift).
	Conditions []metav1.Condition
}

// FullMessage is Message followed by the notes, sorted by topic.
func (st State) FullMessage() string {
	parts := []string{}
	if st.Message != "" {
		parts = append(parts, st.Message)
	}
	topics := make([]string, 0, len(st.Notes))
	for t := range st.Notes {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		parts = append(parts, t+": "+st.Notes[t])
	}
	msg := strings.Join(parts, "; ")
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	return msg
}

// Sink writes the state somewhere.
type Sink interface {
	// Target names where the sink writes, for logs.
	Target() string
	// Write reports st. due means the reporting interval elapsed: timestamps and
	// statistics are refreshed even if nothing else changed; otherwise a sink writes only
	// when the content changed.
	Write(ctx context.Context, st State, due bool) error
}

// HubOptions configure a Hub.
type HubOptions struct {
	Interval time.Duration
	// Distance configures FRR; nil disables distance handling (reported as unsupported).
	Distance *FRR
	// FromSeed is true when the firewall part comes from the seed Firewall.
	FromSeed bool
	// Confirm checks that the kernel still holds the last applied ruleset; nil skips it.
	Confirm func(ctx context.Context) error
	// SeedContact is when the agent last reached the seed API (its last successful status
	// write); the periodic refresh moves LastRunAgainstSeed only up to it, so that
	// SeedConnected means the seed was really reached. Nil never refreshes it.
	SeedContact func() time.Time
	Sinks       []Sink
	Log         *slog.Logger
	Now         func() time.Time
}

// Hub collects sync results and drives the sinks.
type Hub struct {
	HubOptions

	mu           sync.Mutex
	st           State
	distanceDone *distanceKey // what FRR was last configured with
	trigger      chan struct{}
}

type distanceKey struct {
	distance uint8
	asn      int64
}

// NewHub returns a hub; Run starts it.
func NewHub(h HubOptions) *Hub {
	if h.Interval <= 0 {
		h.Interval = 30 * time.Second
	}
	if h.Log == nil {
		h.Log = slog.Default()
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	return &Hub{HubOptions: h, st: State{Version: Version}, trigger: make(chan struct{}, 1)}
}

// Synced implements runner.SyncObserver.
func (h *Hub) Synced(ctx context.Context, res runner.SyncResult) {
	h.configureDistance(ctx, res.Firewall.Distance, res.Firewall.ASN)
	h.mu.Lock()
	st := &h.st
	st.Synced = true
	switch {
	case res.Applied:
		st.RulesApplied, st.Message, st.LastRun = true, "", res.Time
		// Only an applied ruleset advances the generation: "connected" means the rules of
		// this spec are in the kernel.
		if res.Firewall.Generation > 0 {
			st.ObservedGeneration = res.Firewall.Generation
		}
	case res.DryRun:
		st.RulesApplied, st.Message = false, "spec.dryRun is set: the ruleset is rendered but not applied"
	default:
		msg := "applying the ruleset failed"
		if res.Err != nil {
			msg = res.Err.Error()
		}
		if len(msg) > maxMessage {
			msg = msg[:maxMessage] + "..."
		}
		st.RulesApplied, st.Message = false, msg
	}
	// The first sync follows the seed informer's initial list, a real contact; later ones
	// may be triggered by the workload cluster, so only SeedContact moves it on.
	if h.FromSeed && (st.LastRunAgainstSeed.IsZero() || h.SeedContact == nil) {
		st.LastRunAgainstSeed = res.Time
	}
	h.mu.Unlock()
	h.poke()
}

func (h *Hub) configureDistance(ctx context.Context, distance uint8, asn int64) {
	if h.Distance == nil {
		return
	}
	key := distanceKey{distance: distance, asn: asn}
	h.mu.Lock()
	done := h.distanceDone != nil && *h.distanceDone == key
	h.mu.Unlock()
	if done {
		return
	}
	res, err := h.Distance.Configure(ctx, distance, asn)
	if err != nil {
		h.Log.Error("configuring the BGP distance failed; the previous distance stays", "distance", distance, "err", err)
		// Still supported: the manager must see the old distance, not skip the check.
		h.mu.Lock()
		h.st.DistanceSupported = h.Distance.Available()
		h.mu.Unlock()
		return
	}
	h.mu.Lock()
	h.st.Distance, h.st.DistanceSupported, h.distanceDone = res.Distance, res.Supported, &key
	h.mu.Unlock()
}

// reconfirmDistance checks that FRR still runs the configured distance (a restarted FRR
// forgets what was loaded into it) and loads it again when not.
func (h *Hub) reconfirmDistance(ctx context.Context) {
	if h.Distance == nil {
		return
	}
	h.mu.Lock()
	done := h.distanceDone
	h.mu.Unlock()
	if done == nil || !h.Distance.Available() {
		return
	}
	if err := h.Distance.Confirm(ctx, done.distance, done.asn); err == nil {
		return
	} else {
		h.Log.Warn("FRR no longer runs the configured distance; loading it again", "err", err)
	}
	h.mu.Lock()
	h.distanceDone = nil
	h.mu.Unlock()
	h.configureDistance(ctx, done.distance, done.asn)
}

func (h *Hub) poke() {
	select {
	case h.trigger <- struct{}{}:
	default:
	}
}

// State returns the current state.
func (h *Hub) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.st
	st.Notes = maps.Clone(h.st.Notes)
	st.Conditions = slices.Clone(h.st.Conditions)
	return st
}

// SetCondition records c (its LastTransitionTime moves only when the status changes) and
// reports it when it changed.
func (h *Hub) SetCondition(c metav1.Condition) {
	h.mu.Lock()
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = metav1.NewTime(h.Now().UTC().Truncate(time.Second))
	}
	changed := meta.SetStatusCondition(&h.st.Conditions, c)
	h.mu.Unlock()
	if changed {
		h.poke()
	}
}

// Note records a problem of a host part under topic (empty msg clears it) and reports it.
func (h *Hub) Note(topic, msg string) {
	h.mu.Lock()
	changed := h.st.Notes[topic] != msg
	if msg == "" {
		delete(h.st.Notes, topic)
	} else {
		if h.st.Notes == nil {
			h.st.Notes = map[string]string{}
		}
		h.st.Notes[topic] = msg
	}
	h.mu.Unlock()
	if changed {
		h.poke()
	}
}

// Run reports after every sync and every Interval until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	tick := time.NewTicker(h.Interval)
	defer tick.Stop()
	for {
		due := false
		select {
		case <-ctx.Done():
			return nil
		case <-h.trigger:
		case <-tick.C:
			due = true
		}
		if due {
			h.refresh(ctx)
		}
		h.write(ctx, due)
	}
}

// refresh confirms that the applied rules are still in the kernel before the periodic
// report claims so with fresh timestamps.
func (h *Hub) refresh(ctx context.Context) {
	st := h.State()
	if !st.Synced || !st.RulesApplied {
		return
	}
	if h.Confirm != nil {
		if err := h.Confirm(ctx); err != nil {
			h.Log.Warn("the kernel no longer holds the applied ruleset; resyncing", "err", err)
			return
		}
	}
	now := h.Now()
	h.mu.Lock()
	if h.st.RulesApplied {
		h.st.LastRun = now
		if h.FromSeed && h.SeedContact != nil {
			if c := h.SeedContact(); c.After(h.st.LastRunAgainstSeed) {
				h.st.LastRunAgainstSeed = c
			}
		}
	}
	h.mu.Unlock()
	h.reconfirmDistance(ctx)
}

func (h *Hub) write(ctx context.Context, due bool) {
	st := h.State()
	if !st.Synced {
		return
	}
	for _, s := range h.Sinks {
		if err := s.Write(ctx, st, due); err != nil {
			h.Log.Warn("writing the agent status failed", "to", s.Target(), "err", err)
		}
	}
}

// WriteNow reports the current state at once (for --once).
func (h *Hub) WriteNow(ctx context.Context) {
	h.write(ctx, true)
}
