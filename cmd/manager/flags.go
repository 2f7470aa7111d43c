package main

import (
	"flag"
	"strings"

	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/webhook"
)

func bindEndpointFlags(fs *flag.FlagSet, e *manager.EndpointOptions) {
	fs.BoolVar(&e.MetricsSecure, "metrics-secure", true, "Serve metrics over HTTPS to authenticated and authorized clients only (a token allowed to GET /metrics); false serves plain HTTP to anybody.")
	fs.StringVar(&e.MetricsCertDir, "metrics-cert-dir", "", "Directory with tls.crt and tls.key for the metrics server (default: a self-signed certificate).")
	fs.BoolVar(&e.EnableHTTP2, "enable-http2", false, "Allow HTTP/2 on the metrics and webhook servers (off: HTTP/1.1 only, since the HTTP/2 rapid reset CVEs).")
	fs.StringVar(&e.TLSMinVersion, "tls-min-version", "1.2", "Lowest TLS version of the webhook and metrics servers: 1.2 or 1.3.")
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
