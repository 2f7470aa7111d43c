package drift

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
	"github.com/palisade-fw/palisade/internal/agent/runner"
)

// Source gives the last applied ruleset and what the kernel holds now (nft.Applier.Observe).
type Source interface {
	Observe(ctx context.Context) (*ruleset.Ruleset, nft.TableState, error)
}

// Default timings.
const (
	DefaultInterval = 30 * time.Second
	DefaultDebounce = time.Second
)

// Options configure a Detector.
type Options struct {
	Source Source
	// Interval between scheduled checks (nftables.driftCheckInterval); default 30 s.
	Interval time.Duration
	// Debounce is how long a notification waits for more before the check; default 1 s.
	Debounce time.Duration
	// Repair makes the kernel hold the applied ruleset again; nil reports only
	// (nftables.repairDrift: false). It is called once per check that finds drift.
	Repair func()
	// Report receives the status after every check.
	Report     func(Status)
	Registerer prometheus.Registerer
	Log        *slog.Logger
	Now        func() time.Time
}

// Status is the outcome of the last check.
type Status struct {
	Checked time.Time
	// Known is false while nothing is known to be applied (no apply yet, or the last one
	// failed): there is nothing to compare with.
	Known       bool
	Err         error
	Differences []Difference
	// Repairing is true when a repair was asked for these differences.
	Repairing bool
	// LastRepair summarizes the differences the last repair was asked for.
	LastRepair string
}

// InSync tells whether the check found the kernel holding the applied ruleset.
func (s Status) InSync() bool { return s.Known && s.Err == nil && len(s.Differences) == 0 }

// Condition type and reasons reported to the seed Firewall and the FirewallMonitor.
const (
	ConditionRulesetInSync = "RulesetInSync"
	ReasonInSync           = "InSync"
	ReasonDrifted          = "Drifted"
	ReasonCheckFailed      = "CheckFailed"
	ReasonNothingApplied   = "NothingApplied"
)

// Condition is the RulesetInSync condition for st (LastTransitionTime is the receiver's).
func Condition(st Status) metav1.Condition {
	c := metav1.Condition{Type: ConditionRulesetInSync}
	switch {
	case st.Err != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, ReasonCheckFailed, "reading the table back failed: "+st.Err.Error()
	case !st.Known:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, ReasonNothingApplied, "no ruleset is known to be applied (none yet, or the last apply failed)"
	case len(st.Differences) > 0:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonDrifted
		c.Message = "the kernel's table differs from the applied ruleset: " + Summary(st.Differences)
		if st.Repairing {
			c.Message += "; repairing"
		} else {
			c.Message += "; not repaired (nftables.repairDrift is false)"
		}
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonInSync, "the kernel's table holds the applied ruleset"
		if st.LastRepair != "" {
			c.Message += "; last repaired: " + st.LastRepair
		}
	}
	if len(c.Message) > maxSummary+256 {
		c.Message = c.Message[:maxSummary+256] + "..."
	}
	return c
}

// Detector checks on a schedule and when notified.
type Detector struct {
	opts    Options
	trigger chan struct{}

	drifts, repairs prometheus.Counter
	drifted         prometheus.Gauge
	lastCheck       prometheus.Gauge

	mu           sync.Mutex
	status       Status
	expected     nft.TableState
	expectedFrom *ruleset.Ruleset
	inDrift      bool
}

// New returns a Detector; Run starts it.
func New(o Options) *Detector {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &Detector{opts: o, trigger: make(chan struct{}, 1),
		drifts: prometheus.NewCounter(prometheus.CounterOpts{Name: "palisade_agent_ruleset_drift_total",
			Help: "Times a check found the kernel's table differing from the applied ruleset after it held it."}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts{Name: "palisade_agent_ruleset_drift_repairs_total",
			Help: "Repairs of a drifted table asked for (a full re-apply of the ruleset)."}),
		drifted: prometheus.NewGauge(prometheus.GaugeOpts{Name: "palisade_agent_ruleset_drifted",
			Help: "1 while the last check found the kernel's table differing from the applied ruleset."}),
		lastCheck: prometheus.NewGauge(prometheus.GaugeOpts{Name: "palisade_agent_ruleset_drift_last_check_timestamp_seconds",
			Help: "Unix time of the last completed drift check."}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(d.drifts, d.repairs, d.drifted, d.lastCheck)
	}
	return d
}

// Notify asks for a check after the debounce (netlink notifications call it).
func (d *Detector) Notify() {
	select {
	case d.trigger <- struct{}{}:
	default:
	}
}

// Synced implements runner.SyncObserver: after an apply while drifted (a repair, or a
// change that replaced the ruleset) the table is checked again, so the condition clears.
func (d *Detector) Synced(_ context.Context, res runner.SyncResult) {
	d.mu.Lock()
	again := d.inDrift || !d.status.Known
	d.mu.Unlock()
	if res.Applied && again {
		d.Notify()
	}
}

// Status returns the outcome of the last check.
func (d *Detector) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.status
	st.Differences = append([]Difference(nil), st.Differences...)
	return st
}

// Run checks every Interval and after notifications until ctx ends.
func (d *Detector) Run(ctx context.Context) error {
	tick := time.NewTicker(d.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-d.trigger:
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d.opts.Debounce):
			}
			select {
			case <-d.trigger:
			default:
			}
		}
		d.Check(ctx)
	}
}

// Check compares once, records the outcome in metrics and status, asks for a repair when
// the table drifted (unless repairs are off) and returns the outcome.
func (d *Detector) Check(ctx context.Context) Status {
	last, observed, err := d.opts.Source.Observe(ctx)
	now := d.opts.Now()
	d.mu.Lock()
	st := Status{Checked: now, LastRepair: d.status.LastRepair}
	switch {
	case errors.Is(err, nft.ErrNotObservable):
		d.mu.Unlock()
		return Status{}
	case errors.Is(err, nft.ErrApplied):
		// Nothing to say about a table that changed under the reading: try again soon.
		st = d.status
		d.mu.Unlock()
		d.Notify()
		return st
	case err != nil:
		st.Err = err
	case last == nil:
	default:
		st.Known = true
		if d.expectedFrom != last {
			d.expected, err = nft.Expected(last)
			if err != nil {
				st.Err = err
				break
			}
			d.expectedFrom = last
		}
		st.Differences = Compare(d.expected, observed)
	}
	newDrift := len(st.Differences) > 0 && !d.inDrift
	if st.Err == nil {
		d.inDrift = len(st.Differences) > 0
		d.lastCheck.Set(float64(now.UnixNano()) / 1e9)
		if d.inDrift {
			d.drifted.Set(1)
		} else {
			d.drifted.Set(0)
		}
	}
	repair := len(st.Differences) > 0 && d.opts.Repair != nil
	if repair {
		st.Repairing = true
		st.LastRepair = Summary(st.Differences)
	}
	d.status = st
	d.mu.Unlock()

	switch {
	case st.Err != nil:
		d.opts.Log.Warn("drift check failed", "err", st.Err)
	case newDrift:
		d.drifts.Inc()
		d.opts.Log.Warn("the kernel's table differs from the applied ruleset", "differences", len(st.Differences),
			"summary", Summary(st.Differences), "repair", repair)
	}
	if repair {
		d.repairs.Inc()
		d.opts.Repair()
	}
	if d.opts.Report != nil {
		d.opts.Report(st)
	}
	return st
}
