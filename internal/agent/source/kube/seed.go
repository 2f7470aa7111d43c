package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/runner"
)

// Seed watches the Firewall named Name in Namespace and hands its spec to the runner. When
// the Firewall disappears the last ruleset stays (fail closed, unlike upstream's flush).
type Seed struct {
	Kubeconfig string
	Namespace  string
	Name       string
	Log        *slog.Logger
}

// Run blocks until ctx ends.
func (s Seed) Run(ctx context.Context, r *runner.Runner) error {
	cfg, err := RestConfig(s.Kubeconfig)
	if err != nil {
		return err
	}
	c, err := cache.New(cfg, cache.Options{Scheme: Scheme(), ByObject: map[client.Object]cache.ByObject{
		&v2.Firewall{}: {
			Namespaces: map[string]cache.Config{s.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", s.Name),
		},
	}})
	if err != nil {
		return fmt.Errorf("seed cache: %w", err)
	}
	var synced atomic.Bool
	push := func() {
		if !synced.Load() {
			return
		}
		var fw v2.Firewall
		err := c.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, &fw)
		if err != nil {
			s.Log.Warn("firewall not readable from the seed; keeping the current ruleset", "namespace", s.Namespace, "name", s.Name, "err", err)
			return
		}
		r.SetFirewall(Firewall(&fw))
	}
	inf, err := c.GetInformer(ctx, &v2.Firewall{})
	if err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { push() },
		UpdateFunc: func(any, any) { push() },
		DeleteFunc: func(any) { push() },
	}); err != nil {
		return err
	}
	errs := make(chan error, 1)
	go func() { errs <- c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("seed cache did not sync")
	}
	synced.Store(true)
	push()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// Firewall parses the Firewall's spec and carries its generation, requested distance and
// own AS (from the private primary network) along for status reports.
func Firewall(fw *v2.Firewall) model.Firewall {
	out := model.ParseFirewall(FirewallSpec(fw))
	out.Generation = fw.Generation
	out.Distance = uint8(fw.Distance)
	out.Host = model.HostSpec{SSHPublicKeys: fw.Spec.SSHPublicKeys, ControllerURL: fw.Spec.ControllerURL,
		ControllerVersion: fw.Spec.ControllerVersion}
	if out.Host.SSHPublicKeys == nil {
		out.Host.SSHPublicKeys = []string{} // the seed's spec is authoritative: no keys means none
	}
	for _, n := range fw.Status.FirewallNetworks {
		if n.ASN != nil && n.NetworkType != nil && strings.HasPrefix(*n.NetworkType, "privateprimary") {
			out.ASN = *n.ASN
		}
	}
	return out
}
