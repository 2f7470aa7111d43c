package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

var dnsNames = []string{"palisade-webhook.palisade-system.svc", "palisade-webhook.palisade-system.svc.cluster.local"}

func testClient(t *testing.T) client.Client {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	hooks := []admissionregistrationv1.ValidatingWebhook{{Name: "a.example.com"}, {Name: "b.example.com"}}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "m"}, Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "m.example.com"}}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "v"}, Webhooks: hooks},
	).Build()
}

func options(dir string, now *time.Time) Options {
	o := Options{
		CertDir: dir, DNSNames: dnsNames, Namespace: "palisade-system", SecretName: "palisade-webhook-tls",
		MutatingWebhookConfigurations: []string{"m"}, ValidatingWebhookConfigurations: []string{"v"},
	}
	if now != nil {
		o.Now = func() time.Time { return *now }
	}
	return o
}

func readFile(g Gomega, dir, name string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	g.Expect(err).NotTo(HaveOccurred())
	return b
}

func caBundles(g Gomega, c client.Client) [][]byte {
	ctx := context.Background()
	var out [][]byte
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	g.Expect(c.Get(ctx, client.ObjectKey{Name: "m"}, m)).To(Succeed())
	for _, w := range m.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	g.Expect(c.Get(ctx, client.ObjectKey{Name: "v"}, v)).To(Succeed())
	for _, w := range v.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

// handshake serves the files in dir over TLS and connects to it at now, trusting only
// caBundle, for each DNS name.
func handshake(g Gomega, dir string, caBundle []byte, now time.Time) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CertName), filepath.Join(dir, KeyName))
	g.Expect(err).NotTo(HaveOccurred())
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	g.Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	pool := x509.NewCertPool()
	g.Expect(pool.AppendCertsFromPEM(caBundle)).To(BeTrue())
	for _, name := range dnsNames {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name, Time: func() time.Time { return now }})
		g.Expect(err).NotTo(HaveOccurred(), "TLS handshake for %s", name)
		conn.Close()
	}
	_, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "other.example.com", Time: func() time.Time { return now }})
	g.Expect(err).To(HaveOccurred(), "no SAN for other names")
}

func TestGenerate(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	data, err := generate(dnsNames, now, DefaultValidity)
	g.Expect(err).NotTo(HaveOccurred())

	ca, err := parseCert(data[CAName])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ca.IsCA).To(BeTrue())
	g.Expect(ca.Subject.CommonName).To(Equal(caCommonName))

	leaf, err := parseCert(data[CertName])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(leaf.IsCA).To(BeFalse())
	g.Expect(leaf.DNSNames).To(Equal(dnsNames))
	g.Expect(leaf.Subject.CommonName).To(Equal(dnsNames[0]))
	g.Expect(leaf.ExtKeyUsage).To(ConsistOf(x509.ExtKeyUsageServerAuth))
	g.Expect(leaf.NotAfter).To(Equal(now.Add(DefaultValidity)))
	g.Expect(leaf.NotBefore).To(BeTemporally("<", now))

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range dnsNames {
		_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: now})
		g.Expect(err).NotTo(HaveOccurred())
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: dnsNames[0], CurrentTime: now.Add(DefaultValidity + time.Minute)})
	g.Expect(err).To(HaveOccurred(), "expired after the validity")
	_, err = tls.X509KeyPair(data[CertName], data[KeyName])
	g.Expect(err).NotTo(HaveOccurred())
}

func TestRotationDue(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	data, err := generate(dnsNames, now, 300*24*time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	// Lifetime is 300 days plus the hour of clock skew; 2/3 of it is 200 days and 40 minutes.
	renewal := now.Add(-time.Hour).Add((300*24*time.Hour + time.Hour) * 2 / 3)

	g.Expect(rotationDue(data, dnsNames, now)).To(BeFalse(), "fresh")
	g.Expect(rotationDue(data, dnsNames, renewal.Add(-time.Second))).To(BeFalse(), "just before 2/3")
	g.Expect(rotationDue(data, dnsNames, renewal)).To(BeTrue(), "at 2/3")
	g.Expect(rotationDue(data, dnsNames, now.Add(400*24*time.Hour))).To(BeTrue(), "expired")
	g.Expect(rotationDue(data, []string{"other.palisade-system.svc"}, now)).To(BeTrue(), "other DNS names")
	g.Expect(rotationDue(data, []string{dnsNames[1], dnsNames[0]}, now)).To(BeFalse(), "order does not matter")
	g.Expect(rotationDue(nil, dnsNames, now)).To(BeTrue(), "missing")

	other, err := generate(dnsNames, now, DefaultValidity)
	g.Expect(err).NotTo(HaveOccurred())
	mixed := map[string][]byte{CertName: data[CertName], KeyName: data[KeyName], CAName: other[CAName]}
	g.Expect(rotationDue(mixed, dnsNames, now)).To(BeTrue(), "not signed by the stored CA")
	mixed = map[string][]byte{CertName: data[CertName], KeyName: other[KeyName], CAName: data[CAName]}
	g.Expect(rotationDue(mixed, dnsNames, now)).To(BeTrue(), "key does not match")
}

func TestEnsureSelfSigned(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	c := testClient(t)
	opts := options(dir, &now)

	g.Expect(EnsureSelfSigned(ctx, c, opts)).To(Succeed())
	first := readFile(g, dir, CertName)
	ca := readFile(g, dir, CAName)
	for _, bundle := range caBundles(g, c) {
		g.Expect(bundle).To(Equal(ca), "every webhook trusts the CA")
	}
	handshake(g, dir, ca, now)
	secret := &corev1.Secret{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "palisade-system", Name: "palisade-webhook-tls"}, secret)).To(Succeed())
	g.Expect(secret.Type).To(Equal(corev1.SecretTypeTLS))
	g.Expect(secret.Data[CertName]).To(Equal(first))
	info, err := os.Stat(filepath.Join(dir, KeyName))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))

	t.Run("idempotent", func(t *testing.T) {
		g := NewWithT(t)
		now = now.Add(24 * time.Hour)
		g.Expect(EnsureSelfSigned(ctx, c, opts)).To(Succeed())
		g.Expect(readFile(g, dir, CertName)).To(Equal(first))
	})

	t.Run("another replica or a restart uses the stored pair", func(t *testing.T) {
		g := NewWithT(t)
		otherDir := t.TempDir()
		g.Expect(EnsureSelfSigned(ctx, c, options(otherDir, &now))).To(Succeed())
		g.Expect(readFile(g, otherDir, CertName)).To(Equal(first))
		g.Expect(readFile(g, otherDir, KeyName)).To(Equal(readFile(g, dir, KeyName)))
	})

	t.Run("renews at 2/3 and keeps trusting the previous CA", func(t *testing.T) {
		g := NewWithT(t)
		now = now.Add(250 * 24 * time.Hour)
		g.Expect(EnsureSelfSigned(ctx, c, opts)).To(Succeed())
		renewed := readFile(g, dir, CertName)
		g.Expect(renewed).NotTo(Equal(first))
		bundle := readFile(g, dir, CAName)
		g.Expect(countCerts(bundle)).To(Equal(2), "new and previous CA")
		for _, b := range caBundles(g, c) {
			g.Expect(b).To(Equal(bundle))
		}
		leaf, err := parseCert(renewed)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(leaf.NotBefore).To(BeTemporally("~", now, 2*time.Hour))
		handshake(g, dir, bundle, now)
		// A replica still serving the first certificate is trusted by the new bundle.
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(bundle)
		old, _ := parseCert(first)
		_, err = old.Verify(x509.VerifyOptions{Roots: pool, DNSName: dnsNames[0], CurrentTime: now})
		g.Expect(err).NotTo(HaveOccurred())

		// The next renewal drops the first CA, which has expired by then.
		now = now.Add(250 * 24 * time.Hour)
		g.Expect(EnsureSelfSigned(ctx, c, opts)).To(Succeed())
		g.Expect(countCerts(readFile(g, dir, CAName))).To(Equal(2))
		g.Expect(readFile(g, dir, CAName)).NotTo(ContainSubstring(string(firstCert(ca))))
	})
}

func TestProvidedCertificateIsLeftAlone(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	now := time.Now()
	// A certificate of another issuer, as cert-manager mounts it.
	foreign, err := issue("cert-manager-ca", dnsNames, now, DefaultValidity)
	g.Expect(err).NotTo(HaveOccurred())
	for name, b := range foreign {
		g.Expect(os.WriteFile(filepath.Join(dir, name), b, 0o600)).To(Succeed())
	}
	c := testClient(t)
	g.Expect(EnsureSelfSigned(context.Background(), c, options(dir, &now))).To(Succeed())
	g.Expect(readFile(g, dir, CertName)).To(Equal(foreign[CertName]))
	for _, b := range caBundles(g, c) {
		g.Expect(b).To(BeEmpty(), "cert-manager's CA injector owns the caBundle")
	}
	err = c.Get(context.Background(), client.ObjectKey{Namespace: "palisade-system", Name: "palisade-webhook-tls"}, &corev1.Secret{})
	g.Expect(err).To(HaveOccurred(), "no secret is created")
}

func TestOptionsAreChecked(t *testing.T) {
	g := NewWithT(t)
	g.Expect(EnsureSelfSigned(context.Background(), testClient(t), Options{CertDir: t.TempDir()})).To(MatchError(ContainSubstring("DNSNames")))
}

func countCerts(bundle []byte) int {
	n := 0
	for rest := bundle; ; n++ {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return n
		}
	}
}

func firstCert(bundle []byte) []byte {
	block, _ := pem.Decode(bundle)
	return pem.EncodeToMemory(block)
}

func TestRotatorRenews(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC).Unix())
	c := testClient(t)
	opts := options(dir, nil)
	opts.Now = func() time.Time { return time.Unix(clock.Load(), 0) }
	opts.CheckInterval = 10 * time.Millisecond
	g.Expect(EnsureSelfSigned(ctx, c, opts)).To(Succeed())
	first := readFile(g, dir, CertName)

	r := &Rotator{Client: c, Options: opts}
	g.Expect(r.NeedLeaderElection()).To(BeFalse(), "every replica writes its own cert dir")
	done := make(chan error)
	go func() { done <- r.Start(ctx) }()
	g.Consistently(func() []byte { return readFile(g, dir, CertName) }).WithTimeout(100 * time.Millisecond).Should(Equal(first))
	clock.Add(int64((250 * 24 * time.Hour).Seconds()))
	g.Eventually(func() []byte { return readFile(g, dir, CertName) }).ShouldNot(Equal(first))
	cancel()
	g.Eventually(done).Should(Receive(BeNil()))
}
