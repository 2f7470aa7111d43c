// Package runner is the one rule-file controller: the sub-controllers hand it their part
// (firewall, policies, services), and it composes, renders and applies one ruleset,
// debouncing bursts and retrying failures.
package runner

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/nft"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Applier is what the runner needs from nft.Applier.
type Applier interface {
	Apply(ctx context.Context, desired *ruleset.Ruleset) (nft.Result, error)
}

// Reporter receives the per-object verdicts after every sync; applied tells whether the
// ruleset holding the accepted objects is in the kernel.
type Reporter interface {
	Report(ctx context.Context, verdicts []model.Verdict, applied bool)
}

// SyncResult is what one sync did with which firewall part, for status reports.
type SyncResult struct {
	Firewall model.Firewall
	// Applied is true when the kernel holds the ruleset of this firewall part (also when
	// nothing had to change); false when the apply failed or dryRun kept it from the kernel.
	Applied bool
	// Full is true when the apply was a full sync: every set without the timeout flag was
	// recreated (owners of element-wise sets without timeouts refill theirs; the learned
	// elements of timeout sets such as the FQDN sets are kept).
	Full   bool
	Err    error
	DryRun bool
	Time   time.Time
	// Policies are the accepted policies of the ruleset (the DNS proxy follows their
	// toFQDNs rules once they are applied).
	Policies []model.Policy
}

// SyncObserver is told about every sync (not about syncs that waited for sources).
type SyncObserver interface {
	Synced(ctx context.Context, res SyncResult)
}

// Parts says which contributions must arrive before the first apply.
type Parts struct {
	Policies bool
	Services bool
}

// Options configure a Runner.
type Options struct {
	Table string
	// DNSProxyPort is where the agent's DNS proxy listens (0: no DNS redirect).
	DNSProxyPort uint16
	// DefaultEgress adds model.DefaultEgress to the policies (config nftables.defaultEgress,
	// on unless switched off).
	DefaultEgress bool
	// Debounce is how long to wait for more changes after one arrived.
	Debounce time.Duration
	// MaxBackoff bounds the retry delay after failures.
	MaxBackoff time.Duration
	Log        *slog.Logger
}

// ErrNotReady means a required contribution has not arrived yet.
var ErrNotReady = errors.New("not all sources have delivered yet")

// Runner composes contributions into one ruleset.
type Runner struct {
	applier  Applier
	opts     Options
	required Parts

	mu       sync.Mutex
	firewall *model.Firewall
	policies []model.PolicyInput
	services []model.ServiceInput
	havePols bool
	haveSvcs bool
	renderer *ruleset.Renderer
	composer model.PolicyComposer // parses only the policies that changed
	// The composed halves are kept until their inputs (or the firewall) change, so that a
	// change to one side neither re-parses nor re-renders the other.
	composedPols []model.Policy
	polVerdicts  []model.Verdict
	polsDirty    bool
	composedSvcs []model.Service
	svcVerdicts  []model.Verdict
	svcsDirty    bool
	reporters    []Reporter
	observers    []SyncObserver

	trigger chan struct{}
}

// New returns a Runner that waits for the firewall part and the required parts.
func New(applier Applier, required Parts, opts Options) *Runner {
	if opts.Debounce == 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Runner{applier: applier, required: required, opts: opts, trigger: make(chan struct{}, 1),
		renderer: ruleset.NewRenderer(ruleset.Options{Table: opts.Table, DNSProxyPort: opts.DNSProxyPort}), polsDirty: true, svcsDirty: true}
}

// SetDNSProxyPort re-renders with (port > 0) or without the redirect of the cluster's DNS to
// the agent's DNS proxy; the next sync applies it.
func (r *Runner) SetDNSProxyPort(port uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opts.DNSProxyPort == port {
		return
	}
	r.opts.DNSProxyPort = port
	r.renderer = ruleset.NewRenderer(ruleset.Options{Table: r.opts.Table, DNSProxyPort: port})
}

// AddReporter registers a receiver of verdicts.
func (r *Runner) AddReporter(rep Reporter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reporters = append(r.reporters, rep)
}

// AddObserver registers a receiver of sync results.
func (r *Runner) AddObserver(o SyncObserver) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observers = append(r.observers, o)
}

// SetFirewall replaces the firewall part.
func (r *Runner) SetFirewall(fw model.Firewall) {
	r.mu.Lock()
	if r.firewall != nil && reflect.DeepEqual(*r.firewall, fw) {
		r.mu.Unlock() // e.g. a status-only update of the seed Firewall: nothing to do
		return
	}
	r.firewall = &fw
	r.polsDirty, r.svcsDirty = true, true // allowedNetworks and logging apply to both
	r.mu.Unlock()
	r.Notify()
}

// SetPolicies replaces all policies. The same content again (an event that changed only
// metadata or status) costs one comparison and starts no sync.
func (r *Runner) SetPolicies(p []model.PolicyInput) {
	r.mu.Lock()
	if r.havePols && model.EqualPolicyInputs(r.policies, p) {
		r.mu.Unlock()
		return
	}
	r.policies, r.havePols, r.polsDirty = p, true, true
	r.mu.Unlock()
	r.Notify()
}

// SetServices replaces all services; the same content again starts no sync.
func (r *Runner) SetServices(s []model.ServiceInput) {
	r.mu.Lock()
	if r.haveSvcs && model.EqualServiceInputs(r.services, s) {
		r.mu.Unlock()
		return
	}
	r.services, r.haveSvcs, r.svcsDirty = s, true, true
	r.mu.Unlock()
	r.Notify()
}

// Notify asks for a sync; many notifications before the sync collapse into one.
func (r *Runner) Notify() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Outcome is the result of one sync.
type Outcome struct {
	Ruleset  *ruleset.Ruleset
	Verdicts []model.Verdict
	Result   nft.Result
	DryRun   bool
}

// Render composes and renders the current contributions without applying them.
func (r *Runner) Render() (*ruleset.Ruleset, []model.Verdict, model.Firewall, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firewall == nil || (r.required.Policies && !r.havePols) || (r.required.Services && !r.haveSvcs) {
		return nil, nil, model.Firewall{}, ErrNotReady
	}
	if r.polsDirty {
		policies := r.policies
		if r.opts.DefaultEgress {
			policies = append(slices.Clip(policies), model.DefaultEgress())
		}
		r.composedPols, r.polVerdicts = r.composer.Compose(*r.firewall, policies)
		r.polsDirty = false
	}
	if r.svcsDirty {
		r.composedSvcs, r.svcVerdicts = model.ComposeServices(*r.firewall, r.services)
		r.svcsDirty = false
	}
	snap := model.Snapshot{Firewall: *r.firewall, Policies: r.composedPols, Services: r.composedSvcs}
	verdicts := append(slices.Clone(r.polVerdicts), r.svcVerdicts...)
	return r.renderer.Render(snap), verdicts, *r.firewall, nil
}

// Sync renders and applies once and reports verdicts before it returns.
func (r *Runner) Sync(ctx context.Context) (Outcome, error) {
	return r.sync(ctx, r.report)
}

func (r *Runner) sync(ctx context.Context, report func(context.Context, []model.Verdict, bool)) (Outcome, error) {
	rs, verdicts, fw, err := r.Render()
	if err != nil {
		return Outcome{}, err
	}
	r.mu.Lock()
	policies := r.composedPols
	r.mu.Unlock()
	out := Outcome{Ruleset: rs, Verdicts: verdicts, DryRun: fw.DryRun}
	for _, w := range fw.Warnings {
		r.opts.Log.Warn("firewall spec entry skipped", "reason", w)
	}
	if fw.DryRun {
		r.opts.Log.Info("firewall spec has dryRun set; ruleset rendered but not applied")
		report(ctx, verdicts, false)
		r.observe(ctx, SyncResult{Firewall: fw, DryRun: true, Time: time.Now(), Policies: policies})
		return out, nil
	}
	out.Result, err = r.applier.Apply(ctx, rs)
	report(ctx, verdicts, err == nil)
	r.observe(ctx, SyncResult{Firewall: fw, Applied: err == nil, Full: out.Result.Full, Err: err, Time: time.Now(), Policies: policies})
	return out, err
}

func (r *Runner) observe(ctx context.Context, res SyncResult) {
	r.mu.Lock()
	obs := append([]SyncObserver(nil), r.observers...)
	r.mu.Unlock()
	for _, o := range obs {
		o.Synced(ctx, res)
	}
}

func (r *Runner) report(ctx context.Context, verdicts []model.Verdict, applied bool) {
	for _, v := range verdicts {
		if !v.Accepted {
			r.opts.Log.Warn("object refused", "kind", v.Kind, "object", v.Key.String(), "reason", v.Message)
		}
	}
	r.mu.Lock()
	reps := append([]Reporter(nil), r.reporters...)
	r.mu.Unlock()
	for _, rep := range reps {
		rep.Report(ctx, verdicts, applied)
	}
}

// Run syncs after every notification (debounced) until ctx ends, retrying failures with
// exponential backoff.
func (r *Runner) Run(ctx context.Context) error {
	// Reports (CWNP status writes: 1,000 of them after the first sync) run beside the loop,
	// so that they never hold up the next change on its way to the kernel; a newer report
	// replaces one that has not started yet.
	type pending struct {
		verdicts []model.Verdict
		applied  bool
	}
	reports := make(chan pending, 1)
	reporterDone := make(chan struct{})
	go func() {
		defer close(reporterDone)
		for {
			select {
			case <-ctx.Done():
				return
			case p := <-reports:
				r.report(ctx, p.verdicts, p.applied)
			}
		}
	}()
	defer func() { <-reporterDone }()
	queueReport := func(_ context.Context, verdicts []model.Verdict, applied bool) {
		for {
			select {
			case reports <- pending{verdicts, applied}:
				return
			default:
			}
			select { // drop the report that did not start yet
			case <-reports:
			default:
			}
		}
	}
	backoff := time.Duration(0)
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.trigger:
		case <-retry:
		}
		// Let a burst of changes settle into one sync.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.opts.Debounce):
		}
		select {
		case <-r.trigger:
		default:
		}

		out, err := r.sync(ctx, queueReport)
		switch {
		case errors.Is(err, ErrNotReady):
			retry = nil
			continue
		case err != nil:
			backoff = min(max(2*backoff, time.Second), r.opts.MaxBackoff)
			r.opts.Log.Error("sync failed", "err", err, "previousRulesetKept", nft.PreviousKept(err), "retryIn", backoff)
			retry = time.After(backoff)
			continue
		}
		backoff, retry = 0, nil
		if out.Result.Changed {
			st := out.Ruleset.Stats()
			r.opts.Log.Info("ruleset applied", "full", out.Result.Full, "operations", out.Result.Operations,
				"apply", out.Result.Run, "elements", st.Elements, "objects", len(out.Verdicts))
		}
	}
}
