package certs

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Rotator runs EnsureSelfSigned every Options.CheckInterval, on every replica (each one serves
// webhooks from its own cert dir): it renews the pair at 2/3 of its validity and picks up a
// pair another replica renewed. With a certificate of another issuer it does nothing.
type Rotator struct {
	// Client should not cache (client.New): a cached client would watch every Secret.
	Client  client.Client
	Options Options
}

var (
	_ manager.Runnable               = &Rotator{}
	_ manager.LeaderElectionRunnable = &Rotator{}
)

// Start implements manager.Runnable. Failures are logged and retried at the next tick; the
// certificate in use stays valid for a third of its lifetime after renewal became due.
func (r *Rotator) Start(ctx context.Context) error {
	opts, err := r.Options.withDefaults()
	if err != nil {
		return err
	}
	log := logf.FromContext(ctx).WithName("webhook-cert-rotator")
	ticker := time.NewTicker(opts.CheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if err := EnsureSelfSigned(ctx, r.Client, opts); err != nil {
				log.Error(err, "Failed to renew the webhook certificate")
			}
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica serves webhooks.
func (r *Rotator) NeedLeaderElection() bool { return false }
