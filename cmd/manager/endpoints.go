package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/palisade-fw/palisade/internal/webhook"
)

// endpointOptions harden the metrics and webhook servers (docs/security.md).
type endpointOptions struct {
	// metricsSecure serves metrics over TLS behind Kubernetes authentication (TokenReview) and
	// authorization (SubjectAccessReview of GET /metrics), controller-runtime's filters.
	metricsSecure  bool
	metricsCertDir string
	// enableHTTP2 keeps HTTP/2 on; it is off by default since the HTTP/2 rapid reset and stream
	// cancellation CVEs (CVE-2023-44487, CVE-2023-39325).
	enableHTTP2   bool
	tlsMinVersion string
}

func (e *endpointOptions) bindFlags(fs *flag.FlagSet) {
	fs.BoolVar(&e.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS to authenticated and authorized clients only (a ServiceAccount token allowed to GET /metrics); false serves plain HTTP to anybody.")
	fs.StringVar(&e.metricsCertDir, "metrics-cert-dir", "", "Directory with tls.crt and tls.key for the metrics server (default: a self-signed certificate).")
	fs.BoolVar(&e.enableHTTP2, "enable-http2", false, "Allow HTTP/2 on the metrics and webhook servers (off: HTTP/1.1 only).")
	fs.StringVar(&e.tlsMinVersion, "tls-min-version", "1.2", "Lowest TLS version of the webhook and metrics servers: 1.2 or 1.3.")
}

// tlsOptions are applied to both servers.
func (e *endpointOptions) tlsOptions() ([]func(*tls.Config), error) {
	var minVersion uint16
	switch e.tlsMinVersion {
	case "1.2":
		minVersion = tls.VersionTLS12
	case "1.3":
		minVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("--tls-min-version %q: want 1.2 or 1.3", e.tlsMinVersion)
	}
	opts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = minVersion }}
	if !e.enableHTTP2 {
		opts = append(opts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	return opts, nil
}

func (e *endpointOptions) metricsOptions(addr string, tlsOpts []func(*tls.Config)) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if e.metricsSecure {
		o.SecureServing = true
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
		o.CertDir = e.metricsCertDir
		o.TLSOpts = tlsOpts
	}
	return o
}

// webhookNames are the release's own webhook configurations and certificate Secret, so that two
// releases can run side by side; the defaults are those of config/webhook.
type webhookNames struct {
	mutating, validating, secret string
}

func (w *webhookNames) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&w.mutating, "mutating-webhook-configuration-name", webhook.MutatingWebhookConfigurationName, "MutatingWebhookConfiguration whose caBundle the manager keeps current (self-signed certificates).")
	fs.StringVar(&w.validating, "validating-webhook-configuration-name", webhook.ValidatingWebhookConfigurationName, "ValidatingWebhookConfiguration whose caBundle the manager keeps current.")
	fs.StringVar(&w.secret, "webhook-secret-name", "palisade-webhook-tls", "Secret in the pod's namespace holding the self-signed webhook CA and serving certificate.")
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
