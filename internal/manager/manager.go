// Package manager wires Palisade's controllers into a controller-runtime manager. cmd/manager,
// the end-to-end tests and the demo all start the manager through Setup, so they run the same
// wiring.
package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	crmanager "sigs.k8s.io/controller-runtime/pkg/manager"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/firewall"
	"github.com/palisade-fw/palisade/internal/controller/firewalldeployment"
	"github.com/palisade-fw/palisade/internal/controller/firewallset"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/controller/refwatch"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/userdata"
	"github.com/palisade-fw/palisade/internal/userdata/agentaccess"
	"github.com/palisade-fw/palisade/internal/workload"
)

// Options configure the controllers.
type Options struct {
	Firewall         firewall.Config
	Timeouts         fwutil.Timeouts
	ProgressDeadline time.Duration
	SafetyBackoff    time.Duration
	// Namespaces, when set, are the only namespaces served (--namespace); the caches must be
	// limited to them as well (ScopeCaches).
	Namespaces []string
	// NamespaceSelector restricts the manager to namespaces with matching labels; nil means all.
	NamespaceSelector labels.Selector
	// MaxConcurrentReconciles per controller.
	MaxConcurrentReconciles int
	// Agent configures the kubeconfigs generated for agents (generateFirewallControllerKubeconfig).
	Agent AgentAccessOptions
	// Monitors configures the FirewallMonitors written into workload clusters.
	Monitors MonitorOptions
	// SSHKeySecret, when set, names the ssh key pair Secret (key id_rsa.pub) in each
	// deployment's namespace that gives deployments without sshPublicKeys their key (GEPM's
	// -ssh-key-secret-name). It is read by name through the reference cache.
	SSHKeySecret string
}

// MonitorOptions configure the FirewallMonitors.
type MonitorOptions struct {
	// Disabled turns FirewallMonitors off.
	Disabled bool
	// DefaultKubeconfigSecret is the workload kubeconfig Secret ("<name>" or "<name>/<key>") in
	// each firewall's namespace, used when the firewall has no workload-kubeconfig annotation.
	// Empty: such firewalls get their monitor in the manager's own cluster.
	DefaultKubeconfigSecret string
	// TokenSecret names a Secret (key "token") with the bearer token for the workload
	// kubeconfig, for Gardener's generic token kubeconfig; empty: the kubeconfig is complete.
	TokenSecret string
	// Namespace of the monitors in the workload cluster; empty means "firewall".
	Namespace string
}

// AgentAccessOptions say how agents reach this cluster with a generated kubeconfig.
type AgentAccessOptions struct {
	// APIServerURL is the address the firewalls use; empty means the manager's own, which is
	// only right when the firewalls can reach that address (not an in-cluster service IP).
	APIServerURL string
	// CAData is the API server's CA bundle; empty means the one of the manager's rest config.
	CAData []byte
	// TokenTTL is the lifetime of the agent tokens; they are rotated after two thirds of it.
	TokenTTL time.Duration
	// UpstreamTokenTTL is the lifetime of the tokens of Gardener deployments in the upstream
	// layout, whose firewall-controller never re-reads them; 0 means TokenTTL.
	UpstreamTokenTTL time.Duration
}

// DefaultOptions are the production defaults.
func DefaultOptions() Options {
	return Options{
		Firewall:                firewall.DefaultConfig(),
		ProgressDeadline:        15 * time.Minute,
		SafetyBackoff:           10 * time.Second,
		MaxConcurrentReconciles: 10,
	}
}

// The metrics endpoint authenticates scrapers with TokenReviews and authorizes them with
// SubjectAccessReviews (controller-runtime's metrics filters, --metrics-secure).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Setup registers the FirewallDeployment, FirewallSet and Firewall controllers.
func Setup(mgr ctrl.Manager, metalClient metal.Client, opts Options) error {
	if metalClient == nil {
		return errors.New("a metal-api client is required")
	}
	// Referenced Secrets and ConfigMaps: read from the API server once, kept until they change.
	refs := newReferenceCache(mgr.GetAPIReader(), mgr.GetClient())
	err := mgr.Add(crmanager.RunnableFunc(func(ctx context.Context) error {
		if err := refs.start(ctx, refwatch.Config{Rest: mgr.GetConfig(), Namespaces: opts.Namespaces}); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}))
	if err != nil {
		return err
	}
	renderer := UserdataAdapter{Renderer: userdata.New(refs)}
	access, err := newAgentAccess(mgr, opts.Agent)
	if err != nil {
		return err
	}
	opts.Firewall.ShootAccess = shootAccess(opts)
	access.ShootAccessSecrets = opts.Firewall.ShootAccess.Secrets()
	copts := controller.Options{MaxConcurrentReconciles: max(opts.MaxConcurrentReconciles, 1)}
	metrics := newMetrics(mgr.GetClient())

	fwReconciler := &firewall.Reconciler{
		Client:   mgr.GetClient(),
		Metal:    metalClient,
		Userdata: renderer,
		Recorder: mgr.GetEventRecorder("palisade-firewall"),
		Config:   opts.Firewall,
	}
	setReconciler := &firewallset.Reconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("palisade-firewallset"),
		Timeouts: opts.Timeouts,
	}
	deployReconciler := &firewalldeployment.Reconciler{
		Client:           mgr.GetClient(),
		Recorder:         mgr.GetEventRecorder("palisade-firewalldeployment"),
		Userdata:         renderer,
		ProgressDeadline: opts.ProgressDeadline,
		SafetyBackoff:    opts.SafetyBackoff,
		OnRolloutDone:    metrics.observeRollout,
		AgentAccess:      access,
		Images:           metalClient,
		SSHKeySecret:     opts.SSHKeySecret,
		Secrets:          refs,
	}
	// The workload clusters: FirewallMonitors, and the shoot kubeconfig of Gardener deployments.
	registry := &workload.Registry{
		Seed:          refs,
		Local:         mgr.GetConfig(),
		DefaultSecret: opts.Monitors.DefaultKubeconfigSecret,
		TokenSecret:   opts.Monitors.TokenSecret,
		Namespace:     opts.Monitors.Namespace,
		Scheme:        mgr.GetScheme(),
	}
	if err := mgr.Add(registry); err != nil {
		return err
	}
	access.Shoot = shootConnector(registry, opts.Firewall.ShootAccess.APIServerURL)
	if !opts.Monitors.Disabled {
		fwReconciler.Workload, fwReconciler.WorkloadEvents = registry, registry.Source()
		fwReconciler.DefaultWorkloadKubeconfig = opts.Monitors.DefaultKubeconfigSecret
	}
	watches := refwatch.Config{Rest: mgr.GetConfig(), Namespaces: opts.Namespaces, OnChange: refs.changed}
	fwReconciler.References, deployReconciler.References = watches, watches
	if opts.NamespaceSelector != nil && !opts.NamespaceSelector.Empty() {
		filter := namespaceFilter{reader: mgr.GetClient(), selector: opts.NamespaceSelector}
		fwReconciler.Filter, setReconciler.Filter, deployReconciler.Filter = filter.allowed, filter.allowed, filter.allowed
	}
	for _, setup := range []func() error{
		func() error { return fwReconciler.SetupWithManager(mgr, copts) },
		func() error { return setReconciler.SetupWithManager(mgr, copts) },
		func() error { return deployReconciler.SetupWithManager(mgr, copts) },
	} {
		if err := setup(); err != nil {
			return err
		}
	}
	return metrics.register()
}

// UserdataAdapter adapts the userdata renderer to what the controllers expect: problems a user
// must fix or wait for become *firewall.UserdataError with a condition reason.
type UserdataAdapter struct{ Renderer *userdata.Renderer }

// Render implements firewall.UserdataRenderer.
func (a UserdataAdapter) Render(ctx context.Context, namespace string, spec *v2.FirewallSpec) (string, string, error) {
	res, err := a.Renderer.Render(ctx, namespace, spec)
	if err != nil {
		if m, ok := userdata.IsMissing(err); ok {
			return "", "", &firewall.UserdataError{Reason: m.Reason, Message: missingMessage(err)}
		}
		if t, ok := userdata.IsTooLarge(err); ok {
			return "", "", &firewall.UserdataError{Reason: v2.ReasonUserdataTooLarge, Message: t.Error()}
		}
		return "", "", err
	}
	return res.Userdata, res.Hash, nil
}

// missingMessage names every missing Secret, ConfigMap and key in err (the renderer joins them,
// first by path first), so that the condition lists all there is to create, not only the first.
func missingMessage(err error) string {
	var names []string
	var walk func(error)
	walk = func(err error) {
		if m, ok := err.(*userdata.MissingError); ok {
			names = append(names, m.Error())
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	names = slices.Compact(names)
	if len(names) == 1 {
		return names[0]
	}
	return fmt.Sprintf("%d sources missing: %s", len(names), strings.Join(names, "; "))
}

// References implements firewall.UserdataRenderer.
func (a UserdataAdapter) References(spec *v2.FirewallSpec) (secrets, configMaps []string) {
	return userdata.ReferencedSecrets(spec), userdata.ReferencedConfigMaps(spec)
}

// namespaceFilter admits objects whose namespace carries the selected labels.
type namespaceFilter struct {
	reader   client.Reader
	selector labels.Selector
}

func (f namespaceFilter) allowed(ctx context.Context, namespace string) bool {
	var ns corev1.Namespace
	if err := f.reader.Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
		return false
	}
	return f.selector.Matches(labels.Set(ns.Labels))
}

// newAgentAccess builds the agent identity provisioner from the manager's own connection.
func newAgentAccess(mgr ctrl.Manager, opts AgentAccessOptions) (*agentaccess.AgentAccess, error) {
	cfg := mgr.GetConfig()
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("agent access: %w", err)
	}
	caData := opts.CAData
	if len(caData) == 0 {
		caData = cfg.CAData
		if len(caData) == 0 && cfg.CAFile != "" {
			if caData, err = os.ReadFile(cfg.CAFile); err != nil {
				return nil, fmt.Errorf("agent access: reading the API server CA: %w", err)
			}
		}
	}
	url := opts.APIServerURL
	if url == "" {
		url = cfg.Host
	}
	return &agentaccess.AgentAccess{
		Client:       mgr.GetClient(),
		Clientset:    clientset,
		APIServerURL: url,
		CAData:       caData,
		TokenTTL:     opts.TokenTTL,
		// The upstream firewall-controller keeps the tokens of its allocation (docs/integrations.md).
		UpstreamTokenTTL: opts.UpstreamTokenTTL,
	}, nil
}
