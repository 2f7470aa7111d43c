package kube

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/runner"
)

// Scheme knows every type the agent reads.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1.AddToScheme, v2.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // static registration; cannot fail at run time
		}
	}
	return s
}

// RestConfig loads a kubeconfig file.
func RestConfig(path string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

// Shoot watches CWNPs (in one namespace) and Services (in all namespaces) and hands every
// change to the runner; it also writes each CWNP's status after a sync.
type Shoot struct {
	Kubeconfig string
	Namespace  string
	Policies   bool
	Services   bool
	Agent      string // firewall name, for events
	Log        *slog.Logger
}

// Run blocks until ctx ends.
func (s Shoot) Run(ctx context.Context, r *runner.Runner) error {
	cfg, err := RestConfig(s.Kubeconfig)
	if err != nil {
		return err
	}
	scheme := Scheme()
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		&v1.ClusterwideNetworkPolicy{}: {Namespaces: map[string]cache.Config{s.Namespace: {}}},
	}})
	if err != nil {
		return fmt.Errorf("shoot cache: %w", err)
	}
	var synced atomic.Bool
	push := func() {
		if !synced.Load() {
			return // never hand over a half-filled list: it would drop rules at start-up
		}
		if err := s.push(ctx, c, r); err != nil {
			s.Log.Error("reading shoot objects", "err", err)
		}
	}
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { push() },
		UpdateFunc: func(any, any) { push() },
		DeleteFunc: func(any) { push() },
	}
	if s.Policies {
		inf, err := c.GetInformer(ctx, &v1.ClusterwideNetworkPolicy{})
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			return err
		}
		w, err := client.New(cfg, client.Options{Scheme: scheme})
		if err != nil {
			return err
		}
		r.AddReporter(NewStatusWriter(w, c, newRecorder(cfg, scheme, s.Agent, s.Log), s.Log))
	}
	if s.Services {
		inf, err := c.GetInformer(ctx, &corev1.Service{})
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			return err
		}
	}
	errs := make(chan error, 1)
	go func() { errs <- c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("shoot cache did not sync")
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

func (s Shoot) push(ctx context.Context, c cache.Cache, r *runner.Runner) error {
	if s.Policies {
		var list v1.ClusterwideNetworkPolicyList
		if err := c.List(ctx, &list, client.InNamespace(s.Namespace), client.UnsafeDisableDeepCopy); err != nil {
			return err
		}
		inputs := make([]model.PolicyInput, 0, len(list.Items))
		for i := range list.Items {
			inputs = append(inputs, PolicyInput(&list.Items[i]))
		}
		r.SetPolicies(inputs)
	}
	if s.Services {
		var list corev1.ServiceList
		if err := c.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
			return err
		}
		inputs := make([]model.ServiceInput, 0, len(list.Items))
		for i := range list.Items {
			if in, ok := ServiceInput(&list.Items[i]); ok {
				inputs = append(inputs, in)
			}
		}
		r.SetServices(inputs)
	}
	return nil
}
