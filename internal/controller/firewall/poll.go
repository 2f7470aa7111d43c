package firewall

import (
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// metal-api has no watch: a provisioning machine is polled. For most of a provisioning nothing
// changes (metal-hammer installs for minutes), so the firewall is looked at every CreatingPoll;
// from the moment its phone-home is expected on, every PhoneHomePoll. The expected moment is
// learned per project and partition from the machine that phoned home last (its allocation and
// phone-home event times, both metal-api's clock). Polls of one partition share one find (Fleet),
// so the fast poll costs one find per PhoneHomePoll per partition, and only while a machine is
// due to phone home.

// creatingPoll says how long to wait before looking at a provisioning machine again.
// provisioning is the learned allocation-to-phone-home time (0: not known yet), allocated the
// machine's allocation time, lastEvent its newest provisioning event.
func creatingPoll(slow, fast, provisioning time.Duration, allocated time.Time, lastEvent string, now time.Time) time.Duration {
	if fast <= 0 || fast >= slow {
		return slow
	}
	if provisioning <= 0 || allocated.IsZero() {
		if lastEvent == metal.EventBootingNewKernel {
			return fast // the phone-home is the next event
		}
		return slow
	}
	// The first look is right at the expected phone-home; a machine late for it is polled fast
	// for a while, then slowly again.
	due := allocated.Add(provisioning)
	end := due.Add(max(slow, provisioning/4))
	switch {
	case now.Before(due):
		return max(min(slow, due.Sub(now)), fast/4)
	case now.Before(end):
		return fast
	default:
		return slow
	}
}

// provisioningTime is how long the machine took from its allocation to its first phone-home,
// or 0 when it has not phoned home since. metal-api does not append repeated phone-homes, it
// only refreshes last_event_time, so the event's own time is the first one.
func provisioningTime(m *metal.FirewallResponse) time.Duration {
	if m == nil || m.Allocation == nil || m.Allocation.Created.IsZero() {
		return 0
	}
	var first time.Duration
	for _, e := range m.Events.Log {
		if e.Event != metal.EventPhonedHome || !e.Time.After(m.Allocation.Created) {
			continue // not a phone-home, or one of an earlier allocation
		}
		if d := e.Time.Sub(m.Allocation.Created); first == 0 || d < first {
			first = d
		}
	}
	return first
}
