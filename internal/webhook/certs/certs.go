// Package certs provides the webhook server's TLS certificate. Two modes:
//
//   - provided: the cert dir already holds tls.crt/tls.key from another issuer (cert-manager
//     mounts its Secret there and its CA injector fills the caBundle); nothing is done.
//   - self-signed: a CA and a serving certificate for the Service's DNS names are generated and
//     kept in a Secret, so that every replica and every restart serves the same certificate; they
//     are written to the cert dir, and the CA is patched into the caBundle of Palisade's webhook
//     configurations. The pair is replaced at 2/3 of its validity; the previous CA stays in the
//     bundle until it expires, so that replicas that still serve the old certificate are trusted.
//
// The webhook server picks up rewritten files by itself (controller-runtime's certwatcher).
package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// The serving certificate Secret lives in the manager's own namespace ("palisade-system" is the
// placeholder the chart replaces with the release namespace); get and update name it, create
// cannot (the admission policy holds it to the name). The Secret and webhook configuration
// names are the defaults; the chart writes the release's own names into these rules.
// +kubebuilder:rbac:groups="",namespace=palisade-system,resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",namespace=palisade-system,resources=secrets,verbs=get;update,resourceNames=palisade-webhook-tls
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;update,resourceNames=palisade-mutating-webhook-configuration;palisade-validating-webhook-configuration

// File names in the cert dir and keys in the Secret (those of a kubernetes.io/tls Secret and of
// cert-manager).
const (
	CertName = "tls.crt"
	KeyName  = "tls.key"
	CAName   = "ca.crt"
)

// caCommonName names the self-signed CA. A tls.crt issued by anything else is left alone.
const caCommonName = "palisade-webhook-ca"

// DefaultValidity is the lifetime of a generated CA and serving certificate.
const DefaultValidity = 365 * 24 * time.Hour

// Options configure the serving certificate.
type Options struct {
	// CertDir is the webhook server's cert dir (webhook.Options.CertDir).
	CertDir string
	// DNSNames of the serving certificate, e.g. palisade-webhook.palisade-system.svc; the first
	// one is also the subject's common name.
	DNSNames []string
	// Namespace and SecretName of the Secret that holds the self-signed CA and serving
	// certificate (type kubernetes.io/tls, keys tls.crt, tls.key, ca.crt; no CA key is kept).
	Namespace  string
	SecretName string
	// MutatingWebhookConfigurations and ValidatingWebhookConfigurations are patched with the
	// CA bundle, every webhook in them.
	MutatingWebhookConfigurations   []string
	ValidatingWebhookConfigurations []string
	// Validity of a generated certificate; DefaultValidity when zero. It is replaced at 2/3.
	Validity time.Duration
	// CheckInterval of the Rotator; one hour when zero.
	CheckInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.CertDir == "" || len(o.DNSNames) == 0 || o.Namespace == "" || o.SecretName == "" {
		return o, errors.New("webhook certificate options need CertDir, DNSNames, Namespace and SecretName")
	}
	if o.Validity <= 0 {
		o.Validity = DefaultValidity
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// EnsureSelfSigned makes the cert dir hold a valid serving certificate. When it holds one of
// another issuer (cert-manager), it returns at once. Otherwise it creates or renews the
// self-signed pair in the Secret, patches the CA bundle into the webhook configurations and
// writes the files. Call it before the manager starts (the webhook server needs the files) with
// a client that does not cache (client.New), and run a Rotator for renewals.
func EnsureSelfSigned(ctx context.Context, c client.Client, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if provided, err := providedByOthers(opts.CertDir); err != nil || provided {
		return err
	}

	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: opts.Namespace, Name: opts.SecretName}
	err = c.Get(ctx, key, secret)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading webhook certificate secret %s: %w", key, err)
	}
	exists := err == nil
	if now := opts.Now(); !exists || rotationDue(secret.Data, opts.DNSNames, now) {
		next, err := generate(opts.DNSNames, now, opts.Validity)
		if err != nil {
			return err
		}
		// Keep the previous CA while it is valid: replicas may still serve its certificate.
		next[CAName] = append(next[CAName], validCAs(secret.Data[CAName], now)...)
		// Trust the new CA before anyone can serve a certificate it signed.
		if err := patchCABundle(ctx, c, opts, next[CAName]); err != nil {
			return err
		}
		secret.Type = corev1.SecretTypeTLS
		secret.Data = next
		if exists {
			err = c.Update(ctx, secret)
		} else {
			secret.ObjectMeta = metav1.ObjectMeta{Namespace: opts.Namespace, Name: opts.SecretName,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "palisade"}}
			err = c.Create(ctx, secret)
		}
		switch {
		case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
			// Another replica won the race; use its certificate.
			if err := c.Get(ctx, key, secret); err != nil {
				return fmt.Errorf("reading webhook certificate secret %s: %w", key, err)
			}
		case err != nil:
			return fmt.Errorf("storing webhook certificate secret %s: %w", key, err)
		default:
			logf.FromContext(ctx).Info("Issued self-signed webhook certificate", "secret", key, "dnsNames", opts.DNSNames)
		}
	}

	if err := patchCABundle(ctx, c, opts, secret.Data[CAName]); err != nil {
		return err
	}
	return writeFiles(opts.CertDir, secret.Data)
}

// providedByOthers reports whether the cert dir holds a certificate this package did not issue.
func providedByOthers(dir string) (bool, error) {
	raw, err := os.ReadFile(filepath.Join(dir, CertName))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cert, err := parseCert(raw)
	if err != nil {
		return false, fmt.Errorf("%s: %w", filepath.Join(dir, CertName), err)
	}
	return cert.Issuer.CommonName != caCommonName, nil
}

// rotationDue reports whether the stored pair must be replaced: missing or broken, issued for
// other DNS names, not signed by the stored CA, or past 2/3 of its validity.
func rotationDue(data map[string][]byte, dnsNames []string, now time.Time) bool {
	if _, err := tls.X509KeyPair(data[CertName], data[KeyName]); err != nil {
		return true
	}
	cert, err := parseCert(data[CertName])
	if err != nil {
		return true
	}
	if !slices.Equal(slices.Sorted(slices.Values(cert.DNSNames)), slices.Sorted(slices.Values(dnsNames))) {
		return true
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data[CAName]) {
		return true
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: dnsNames[0], CurrentTime: now}); err != nil {
		return true
	}
	return !now.Before(renewAt(cert))
}

// renewAt is 2/3 into the certificate's validity.
func renewAt(cert *x509.Certificate) time.Time {
	return cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) * 2 / 3)
}

func parseCert(raw []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// validCAs returns the PEM certificates of bundle that are still valid at now.
func validCAs(bundle []byte, now time.Time) []byte {
	var out []byte
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil && now.Before(cert.NotAfter) {
			out = append(out, pem.EncodeToMemory(block)...)
		}
	}
}

// generate creates a CA and a serving certificate signed by it. The CA key is discarded: the
// next renewal creates a new CA.
func generate(dnsNames []string, now time.Time, validity time.Duration) (map[string][]byte, error) {
	return issue(caCommonName, dnsNames, now, validity)
}

func issue(caName string, dnsNames []string, now time.Time, validity time.Duration) (map[string][]byte, error) {
	notBefore, notAfter := now.Add(-time.Hour), now.Add(validity) // an hour of clock skew
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: caName, Organization: []string{"palisade"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating webhook CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: dnsNames[0], Organization: []string{"palisade"}},
		DNSNames:              slices.Clone(dnsNames),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating webhook serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		CAName:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertName: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyName:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// patchCABundle sets caBundle on every webhook of the named configurations.
func patchCABundle(ctx context.Context, c client.Client, opts Options, bundle []byte) error {
	for _, name := range opts.MutatingWebhookConfigurations {
		err := setCABundle(ctx, c, name, bundle, &admissionregistrationv1.MutatingWebhookConfiguration{},
			func(cfg *admissionregistrationv1.MutatingWebhookConfiguration) []*admissionregistrationv1.WebhookClientConfig {
				out := make([]*admissionregistrationv1.WebhookClientConfig, len(cfg.Webhooks))
				for i := range cfg.Webhooks {
					out[i] = &cfg.Webhooks[i].ClientConfig
				}
				return out
			})
		if err != nil {
			return fmt.Errorf("patching caBundle of MutatingWebhookConfiguration %s: %w", name, err)
		}
	}
	for _, name := range opts.ValidatingWebhookConfigurations {
		err := setCABundle(ctx, c, name, bundle, &admissionregistrationv1.ValidatingWebhookConfiguration{},
			func(cfg *admissionregistrationv1.ValidatingWebhookConfiguration) []*admissionregistrationv1.WebhookClientConfig {
				out := make([]*admissionregistrationv1.WebhookClientConfig, len(cfg.Webhooks))
				for i := range cfg.Webhooks {
					out[i] = &cfg.Webhooks[i].ClientConfig
				}
				return out
			})
		if err != nil {
			return fmt.Errorf("patching caBundle of ValidatingWebhookConfiguration %s: %w", name, err)
		}
	}
	return nil
}

// setCABundle writes bundle into every client config of one webhook configuration, retrying
// on conflicts; it writes nothing when all already carry it.
func setCABundle[T client.Object](ctx context.Context, c client.Client, name string, bundle []byte, obj T,
	clientConfigs func(T) []*admissionregistrationv1.WebhookClientConfig) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
			return err
		}
		changed := false
		for _, cc := range clientConfigs(obj) {
			if !bytes.Equal(cc.CABundle, bundle) {
				cc.CABundle, changed = bundle, true
			}
		}
		if !changed {
			return nil
		}
		return c.Update(ctx, obj)
	})
}

// writeFiles writes the pair (and the CA bundle) into dir when it differs, each file atomically.
// The key goes first: the certwatcher loads a pair only when both match.
func writeFiles(dir string, data map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, name := range []string{KeyName, CertName, CAName} {
		target := filepath.Join(dir, name)
		if current, err := os.ReadFile(target); err == nil && bytes.Equal(current, data[name]) {
			continue
		}
		tmp, err := os.CreateTemp(dir, "."+name+"-*")
		if err != nil {
			return err
		}
		_, err = tmp.Write(data[name])
		err = errors.Join(err, tmp.Chmod(0o600), tmp.Close())
		if err == nil {
			err = os.Rename(tmp.Name(), target)
		}
		if err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("writing %s: %w", target, err)
		}
	}
	return nil
}
