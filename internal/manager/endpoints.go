package manager

import (
	"crypto/tls"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// EndpointOptions harden the metrics and webhook servers (docs/security.md); cmd/manager binds
// them to flags.
type EndpointOptions struct {
	// MetricsSecure serves metrics over TLS behind Kubernetes authentication (TokenReview) and
	// authorization (SubjectAccessReview of GET /metrics), controller-runtime's filters.
	MetricsSecure bool
	// MetricsCertDir holds tls.crt and tls.key; empty: a self-signed certificate.
	MetricsCertDir string
	// EnableHTTP2 keeps HTTP/2 on; it is off by default since the HTTP/2 rapid reset and
	// stream cancellation CVEs (CVE-2023-44487, CVE-2023-39325).
	EnableHTTP2 bool
	// TLSMinVersion is "1.2" or "1.3".
	TLSMinVersion string
}

// TLSOptions are applied to both servers.
func (e EndpointOptions) TLSOptions() ([]func(*tls.Config), error) {
	var minVersion uint16
	switch e.TLSMinVersion {
	case "1.2", "":
		minVersion = tls.VersionTLS12
	case "1.3":
		minVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("TLS minimum version %q: want 1.2 or 1.3", e.TLSMinVersion)
	}
	opts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = minVersion }}
	if !e.EnableHTTP2 {
		opts = append(opts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	return opts, nil
}

// MetricsOptions are the metrics server options for addr.
func (e EndpointOptions) MetricsOptions(addr string, tlsOpts []func(*tls.Config)) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if e.MetricsSecure {
		o.SecureServing = true
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
		o.CertDir = e.MetricsCertDir
		o.TLSOpts = tlsOpts
	}
	return o
}
