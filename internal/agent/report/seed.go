package report

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// SeedFirewall writes status.controllerStatus of the Firewall in the seed, with a merge
// patch of exactly that field on the status subresource; nothing else in the status changes.
//
// A successful write is the agent's contact with the seed: it stamps lastRunAgainstSeed
// with the time of the write (LastContact tells the other sinks), so SeedConnected is
// never refreshed by an agent that cannot reach the seed.
type SeedFirewall struct {
	Client    client.Client
	Namespace string
	Name      string
	// Stats collects device, rule and IDS statistics; nil reports none.
	Stats func(ctx context.Context) (*v2.FirewallStats, error)
	Now   func() time.Time

	mu          sync.Mutex
	lastContent string // the written state without timestamps and statistics
	written     bool
	stats       *v2.FirewallStats
	contact     time.Time
}

// LastContact is when a write to the seed last succeeded.
func (s *SeedFirewall) LastContact() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contact
}

// Target implements Sink.
func (s *SeedFirewall) Target() string { return "seed Firewall " + s.Namespace + "/" + s.Name }

// Write implements Sink.
func (s *SeedFirewall) Write(ctx context.Context, st State, due bool) error {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	if !st.LastRunAgainstSeed.IsZero() {
		st.LastRunAgainstSeed = now // this write, if it succeeds, is the contact
	}
	cc := controllerConnection(st)
	content := contentKey(cc, func(c *map[string]any) {
		delete(*c, "lastRun")
		delete(*c, "lastRunAgainstSeed")
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written && content == s.lastContent && !due {
		return nil
	}
	if (due || s.stats == nil) && s.Stats != nil {
		if stats, err := s.Stats(ctx); err == nil {
			s.stats = stats
		}
	}
	if s.stats != nil {
		cc["stats"] = s.stats
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"controllerStatus": cc}})
	if err != nil {
		return err
	}
	fw := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name}}
	if err := s.Client.Status().Patch(ctx, fw, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return err
	}
	s.lastContent, s.written, s.contact = content, true, now
	return nil
}

// controllerConnection is the merge patch content of v2.ControllerConnection. Every key is
// present so that stale values are overwritten; an empty message is removed (null), and an
// unknown generation is left out so that the previous one stays.
func controllerConnection(st State) map[string]any {
	cc := map[string]any{
		"actualVersion":  st.Version,
		"actualDistance": st.Distance,
		// Without FRR the manager does not wait for a distance it cannot get.
		"distanceSupported": st.DistanceSupported,
		"rulesApplied":      st.RulesApplied,
		"message":           nil,
		"conditions":        nil,
	}
	if len(st.Conditions) > 0 {
		cc["conditions"] = st.Conditions
	}
	if msg := st.FullMessage(); msg != "" {
		cc["message"] = msg
	}
	if !st.LastRun.IsZero() {
		cc["lastRun"] = timestamp(st.LastRun)
	}
	if !st.LastRunAgainstSeed.IsZero() {
		cc["lastRunAgainstSeed"] = timestamp(st.LastRunAgainstSeed)
	}
	if st.ObservedGeneration > 0 {
		cc["observedGeneration"] = st.ObservedGeneration
	}
	return cc
}

func timestamp(t time.Time) metav1.Time {
	return metav1.NewTime(t.UTC().Truncate(time.Second))
}

// contentKey serializes a copy of m after drop removed what does not count as a change.
func contentKey(m map[string]any, drop func(*map[string]any)) string {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	drop(&c)
	b, _ := json.Marshal(c)
	return string(b)
}
