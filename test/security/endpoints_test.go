package security

import (
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/palisade-fw/palisade/internal/manager"
)

// token mints a token for a new ServiceAccount in the tenant namespace (as the administrator).
func token(g Gomega, name string) string {
	g.Expect(admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantNamespace}})).To(Succeed())
	clientset, err := kubernetes.NewForConfig(stack.Config)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := clientset.CoreV1().ServiceAccounts(tenantNamespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return resp.Status.Token
}

// The metrics endpoint as cmd/manager configures it by default, running as the manager's
// ServiceAccount with the chart's RBAC (TokenReviews and SubjectAccessReviews).
func TestMetricsNeedKubernetesAuthnAndAuthz(t *testing.T) {
	g := NewWithT(t)
	endpoints := manager.EndpointOptions{MetricsSecure: true, TLSMinVersion: "1.2"}
	tlsOpts, err := endpoints.TLSOptions()
	g.Expect(err).NotTo(HaveOccurred())
	cfg := impersonate(stack.Config, releaseNamespace, managerServiceAccount)
	httpClient, err := rest.HTTPClientFor(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	server, err := metricsserver.NewServer(endpoints.MetricsOptions("127.0.0.1:0", tlsOpts), cfg, httpClient)
	g.Expect(err).NotTo(HaveOccurred())
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = server.Start(sctx) }()
	bound := server.(interface{ GetBindAddr() string })
	g.Eventually(bound.GetBindAddr, time.Minute).ShouldNot(BeEmpty())
	url := "https://" + bound.GetBindAddr() + "/metrics"

	scraper, stranger := token(g, "scraper"), token(g, "stranger")
	g.Expect(admin.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: releaseName + "-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "scraper", Namespace: tenantNamespace}},
	})).To(Succeed())

	// The certificate is self-signed; what is under test is who gets an answer.
	insecure := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}} //nolint:gosec
	get := func(bearer string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		return (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: insecure.Clone(), ForceAttemptHTTP2: true}}).Do(req)
	}
	status := func(bearer string) func() (int, error) {
		return func() (int, error) {
			resp, err := get(bearer)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			return resp.StatusCode, nil
		}
	}
	g.Eventually(status(""), time.Minute).Should(Equal(http.StatusUnauthorized), "no token")
	g.Eventually(status(stranger), time.Minute).Should(Equal(http.StatusForbidden), "a token not allowed to GET /metrics")
	g.Eventually(status(scraper), time.Minute).Should(Equal(http.StatusOK), "a token bound to the metrics-reader ClusterRole")

	t.Log("HTTP/2 is off: a client offering h2 gets HTTP/1.1")
	resp, err := get(scraper)
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.Proto).To(Equal("HTTP/1.1"))
	g.Expect(resp.TLS.NegotiatedProtocol).NotTo(Equal("h2"))

	t.Log("TLS below 1.2 is refused")
	old := insecure.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	conn, err := tls.Dial("tcp", bound.GetBindAddr(), old)
	if err == nil {
		conn.Close()
	}
	g.Expect(err).To(HaveOccurred(), "a TLS 1.1 handshake succeeded")
}
