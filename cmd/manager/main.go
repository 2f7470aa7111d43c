// Command manager runs Palisade's firewall manager in a seed or management cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/firewall"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/scheme"
	"github.com/palisade-fw/palisade/internal/version"
	"github.com/palisade-fw/palisade/internal/webhook"
	"github.com/palisade-fw/palisade/internal/webhook/certs"
	"github.com/palisade-fw/palisade/internal/workload"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	opts := manager.DefaultOptions()
	var (
		metricsAddr, healthAddr, certDir  string
		leaderElection                    bool
		leaderElectionNamespace           string
		metalURL, metalHMACFile, authType string
		namespaceSelector                 string
		webhookPort                       int
		enableWebhooks                    bool
		webhookService, podNamespace      string
		agentCAFile                       string
		kubeQPS                           float64
		kubeBurst                         int
		metalKeyFiles                     metalKeys
		endpoints                         manager.EndpointOptions
		namespaces                        string
		webhookNames                      webhookNames
		sshKeyNamespace                   string
	)
	fs := flag.CommandLine
	fs.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint.")
	fs.StringVar(&healthAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&leaderElection, "leader-elect", false, "Elect a leader so that only one replica reconciles.")
	fs.StringVar(&leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election lease (default: the pod's namespace).")
	fs.StringVar(&certDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory with tls.crt and tls.key for the webhook server.")
	fs.IntVar(&webhookPort, "webhook-port", 9443, "Port of the webhook server.")
	fs.BoolVar(&enableWebhooks, "enable-webhooks", true, "Serve the defaulting and validating admission webhooks.")
	fs.StringVar(&webhookService, "webhook-service-name", "palisade-webhook", "Service in front of the webhook server (for the self-signed certificate).")
	fs.StringVar(&podNamespace, "pod-namespace", os.Getenv("POD_NAMESPACE"), "Namespace the manager runs in.")
	fs.StringVar(&metalURL, "metal-api-url", "", "metal-api base URL (required).")
	fs.StringVar(&metalHMACFile, "metal-api-hmac-file", "", "File holding the metal-api HMAC key (default: env METAL_API_HMAC); it signs every call without a key of its own below.")
	fs.StringVar(&authType, "metal-api-hmac-auth-type", metal.AuthTypeAdmin, "HMAC auth type; updating machine tags and ssh keys needs Metal-Admin.")
	fs.StringVar(&metalKeyFiles.view, "metal-api-view-hmac-file", "", "File holding a Metal-View key for reads (get, find) (default: env METAL_API_VIEW_HMAC, else the key of --metal-api-hmac-file).")
	fs.StringVar(&metalKeyFiles.edit, "metal-api-edit-hmac-file", "", "File holding a Metal-Edit key for allocate and free, and for reads without a view key (default: env METAL_API_EDIT_HMAC).")
	fs.StringVar(&metalKeyFiles.admin, "metal-api-admin-hmac-file", "", "File holding a Metal-Admin key for machine updates (tags, ssh keys) (default: env METAL_API_ADMIN_HMAC).")
	fs.StringVar(&opts.Firewall.ClusterID, "cluster-id", "", "Written as tag cluster.metal-stack.io/id on every machine (optional).")
	fs.StringVar(&namespaces, "namespace", "", "Serve only these namespaces (comma-separated): every cache is limited to them, so a namespaced Role suffices (Gardener: the shoot namespace; default: all namespaces).")
	fs.StringVar(&namespaceSelector, "namespace-selector", "", "Only reconcile namespaces whose labels match this selector (default: all namespaces).")
	fs.DurationVar(&opts.Timeouts.Create, "create-timeout", 0, "Replace a firewall not ready this long after allocation (0: never).")
	fs.DurationVar(&opts.Timeouts.Health, "firewall-health-timeout", 0, "Replace a provisioned firewall that is not ready for this long (0: never).")
	fs.DurationVar(&opts.ProgressDeadline, "progress-deadline", opts.ProgressDeadline, "Report a rollout without progress after this long.")
	fs.DurationVar(&opts.SafetyBackoff, "safety-backoff", opts.SafetyBackoff, "Least time between two new FirewallSets of one deployment.")
	fs.DurationVar(&opts.Firewall.RunningPoll, "metal-poll-interval", opts.Firewall.RunningPoll, "How often running firewalls are checked in metal-api (one request per project and partition).")
	fs.DurationVar(&opts.Firewall.CreatingPoll, "metal-poll-interval-creating", opts.Firewall.CreatingPoll, "How often provisioning firewalls are checked.")
	fs.DurationVar(&opts.Firewall.PhoneHomePoll, "metal-poll-interval-phone-home", opts.Firewall.PhoneHomePoll, "How often a provisioning firewall is checked around the time its phone-home is expected (learned per partition; one request per project and partition; 0: off).")
	fs.DurationVar(&opts.Firewall.AllocationGrace, "allocation-grace", opts.Firewall.AllocationGrace, "Longest time metal-api may take to complete an allocation; after an allocation without an answer no second one is sent, and a deleted firewall is not released, before it passed.")
	fs.Float64Var(&kubeQPS, "kube-api-qps", 200, "Requests per second to the Kubernetes API server, per resource (a fleet roll is bound by it; see docs/benchmarks.md).")
	fs.IntVar(&kubeBurst, "kube-api-burst", 400, "Burst of requests to the Kubernetes API server, per resource.")
	fs.IntVar(&opts.MaxConcurrentReconciles, "max-concurrent-reconciles", opts.MaxConcurrentReconciles, "Parallel reconciles per controller.")
	fs.StringVar(&opts.Agent.APIServerURL, "agent-api-server-url", "", "API server URL written into generated agent kubeconfigs; it must be reachable from the firewalls (default: the manager's own).")
	fs.StringVar(&agentCAFile, "agent-api-server-ca-file", "", "CA bundle written into generated agent kubeconfigs (default: the manager's own CA).")
	fs.DurationVar(&opts.Agent.TokenTTL, "agent-token-ttl", 24*time.Hour, "Lifetime of generated agent tokens; they are rotated after two thirds of it (minimum 10m).")
	fs.DurationVar(&opts.Agent.UpstreamTokenTTL, "upstream-agent-token-ttl", 365*24*time.Hour, "Lifetime of the tokens in the seed and shoot kubeconfigs of Gardener deployments in the upstream layout: the upstream firewall-controller reads them once, at boot (0: --agent-token-ttl; docs/integrations.md).")
	fs.BoolVar(&opts.Monitors.Disabled, "disable-firewall-monitors", false, "Do not write FirewallMonitors into workload clusters.")
	fs.StringVar(&opts.Monitors.DefaultKubeconfigSecret, "workload-kubeconfig-secret", "", "Secret (\"name\" or \"name/key\") in each firewall's namespace with the workload cluster kubeconfig, for firewalls without the "+v2.WorkloadKubeconfigAnnotation+" annotation (default: the manager's own cluster).")
	fs.StringVar(&opts.Monitors.TokenSecret, "workload-token-secret", "", "Secret (key \"token\") in each firewall's namespace with the bearer token for the workload kubeconfig, for kubeconfigs that point at a token file (Gardener: shoot-access-firewall-controller-manager).")
	fs.DurationVar(&opts.Firewall.MonitorRollInterval, "monitor-roll-interval", firewall.DefaultMonitorRollInterval, "Least time between two roll requests through one firewall's FirewallMonitor (the tenant can write it).")
	fs.StringVar(&opts.Monitors.Namespace, "monitor-namespace", "firewall", "Namespace of the FirewallMonitors in the workload clusters.")
	bindEndpointFlags(fs, &endpoints)
	webhookNames.bindFlags(fs)
	fs.StringVar(&opts.SSHKeySecret, "ssh-key-secret", "", "Secret in each deployment's namespace whose key id_rsa.pub becomes the ssh public key of deployments without sshPublicKeys (Gardener: the shoot's ssh-keypair Secret).")
	fs.StringVar(&sshKeyNamespace, "ssh-key-secret-namespace", "", "GEPM: namespace of the --ssh-key-secret; Palisade reads it in each deployment's namespace, so only that of a single --namespace is accepted.")
	fs.StringVar(&opts.Firewall.ShootAccess.APIServerURL, "shoot-api-server-url", "", "Workload API server URL the firewalls reach; with --workload-kubeconfig-secret it is published in status.shootAccess for the upstream firewall-controller (Gardener).")
	showVersion := fs.Bool("version", false, "Print the version and exit.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	flag.Parse()
	if *showVersion {
		fmt.Println(version.String())
		return nil
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if served := splitList(namespaces); sshKeyNamespace != "" && (len(served) != 1 || served[0] != sshKeyNamespace) {
		return fmt.Errorf("--ssh-key-secret-namespace=%s: the ssh key Secret is read in each deployment's namespace; only the one --namespace is accepted", sshKeyNamespace)
	}
	if metalURL == "" {
		return errors.New("--metal-api-url is required")
	}
	metalKeyFiles.file, metalKeyFiles.authType = metalHMACFile, authType
	metalCfg, err := metalConfig(metalURL, metalKeyFiles, os.Getenv)
	if err != nil {
		return err
	}
	if ref := opts.Monitors.DefaultKubeconfigSecret; ref != "" {
		if _, err := workload.ParseSecretRef(ref); err != nil {
			return fmt.Errorf("--workload-kubeconfig-secret: %w", err)
		}
	}
	if agentCAFile != "" {
		ca, err := os.ReadFile(agentCAFile)
		if err != nil {
			return fmt.Errorf("--agent-api-server-ca-file: %w", err)
		}
		opts.Agent.CAData = ca
	}
	if namespaceSelector != "" {
		sel, err := labels.Parse(namespaceSelector)
		if err != nil {
			return fmt.Errorf("--namespace-selector: %w", err)
		}
		opts.NamespaceSelector = sel
	}

	metalCfg.Registerer = crmetrics.Registry
	metalClient, err := metal.New(metalCfg)
	if err != nil {
		return fmt.Errorf("metal-api client: %w", err)
	}

	opts.Namespaces = splitList(namespaces)
	// Under GEPM the manager serves exactly one namespace, its own, and GEPM passes no pod
	// namespace: the webhook certificate Secret and the leader election lease live there.
	if podNamespace == "" && len(opts.Namespaces) == 1 {
		podNamespace = opts.Namespaces[0]
	}
	if leaderElectionNamespace == "" {
		leaderElectionNamespace = podNamespace
	}
	tlsOpts, err := endpoints.TLSOptions()
	if err != nil {
		return err
	}

	restCfg := ctrl.GetConfigOrDie()
	restCfg.QPS, restCfg.Burst = float32(kubeQPS), kubeBurst
	mgrOpts := ctrl.Options{
		Scheme:                  scheme.New(),
		Metrics:                 endpoints.MetricsOptions(metricsAddr, tlsOpts),
		HealthProbeBindAddress:  healthAddr,
		LeaderElection:          leaderElection,
		LeaderElectionID:        "palisade-manager.firewall.metal-stack.io",
		LeaderElectionNamespace: leaderElectionNamespace,
		WebhookServer:           crwebhook.NewServer(crwebhook.Options{Port: webhookPort, CertDir: certDir, TLSOpts: tlsOpts}),
	}
	manager.ScopeCaches(&mgrOpts, opts.Namespaces)
	mgr, err := ctrl.NewManager(restCfg, mgrOpts)
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	if enableWebhooks {
		if err := setupWebhooks(mgr, certDir, webhookService, podNamespace, webhookNames); err != nil {
			return err
		}
	}
	if err := manager.Setup(mgr, metalClient, opts); err != nil {
		return fmt.Errorf("setting up controllers: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.Info("Starting Palisade manager", "metalAPI", strings.TrimRight(metalURL, "/"), "namespaces", opts.Namespaces, "namespaceSelector", namespaceSelector)
	return mgr.Start(ctrl.SetupSignalHandler())
}

// setupWebhooks registers the admission webhooks. Without certificates from cert-manager in
// certDir, a self-signed CA and serving certificate are created, patched into the webhook
// configurations and rotated before they expire.
func setupWebhooks(mgr ctrl.Manager, certDir, service, namespace string, names webhookNames) error {
	if namespace == "" {
		return errors.New("--pod-namespace (or env POD_NAMESPACE) is required with webhooks enabled")
	}
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()}) // uncached: no cluster-wide Secret informer
	if err != nil {
		return err
	}
	certOpts := certs.Options{
		CertDir:                         certDir,
		DNSNames:                        []string{service + "." + namespace + ".svc", service + "." + namespace + ".svc.cluster.local"},
		Namespace:                       namespace,
		SecretName:                      names.secret,
		MutatingWebhookConfigurations:   []string{names.mutating},
		ValidatingWebhookConfigurations: []string{names.validating},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := certs.EnsureSelfSigned(ctx, direct, certOpts); err != nil {
		return fmt.Errorf("webhook certificate: %w", err)
	}
	if err := mgr.Add(&certs.Rotator{Client: direct, Options: certOpts}); err != nil {
		return err
	}
	if err := webhook.SetupWebhooksWithManager(mgr); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker())
}
