package firewall

import (
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// metal-api has no watch: a provisioning machine is polled. For most of a provisioning nothing
// changes (metal-hammer installs for minutes), so the firewall is looked at every CreatingPoll;
// from the moment its phone-home is expected on, its partition is fetched every PhoneHomePoll by
// one poller (Fleet.Watch), whose fan-out hands the phone-home to the firewall. The expected
// moment is learned per project and partition from the machine that phoned home last (its
// allocation and phone-home event times, both metal-api's clock). So the fast poll costs one
// find per PhoneHomePoll per partition, and only while a machine is due to phone home.

// creatingPoll says how long to wait before looking at a provisioning machine again, and for
// how long its partition is to be watched (polled every fast interval by the fleet's poller,
// whose fan-out brings the phone-home to the firewall; 0: not now). provisioning is the learned
// allocation-to-phone-home time (0: not known yet), allocated the machine's allocation time,
// lastEvent its newest provisioning event.
func creatingPoll(slow, fast, provisioning time.Duration, allocated time.Time, lastEvent string, now time.Time) (next, watch time.Duration) {
	if fast <= 0 || fast >= slow {
		return slow, 0
	}
	if provisioning <= 0 || allocated.IsZero() {
		if lastEvent == metal.EventBootingNewKernel {
			return slow, slow // the phone-home is the next event
		}
		return slow, 0
	}
	// The first look is right at the expected phone-home; a machine late for it is watched for
	// a while, then polled slowly again.
	due := allocated.Add(provisioning)
	end := due.Add(max(slow, provisioning/4))
	switch {
	case now.Before(due):
		return max(min(slow, due.Sub(now)), fast/4), 0
	case now.Before(end):
		return min(slow, end.Sub(now)), end.Sub(now)
	default:
		return slow, 0
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
