package gepm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/helmtool"
	"github.com/palisade-fw/palisade/internal/userdata/agentaccess"
)

// The names GEPM gives the shoot's objects in the seed namespace (its control-plane chart and
// Gardener's secrets manager); the hash suffixes are Gardener's, any value does.
const (
	shootNamespace          = "shoot--proj--name"
	shootUID                = "5e0c2b9a-1d2e-4f60-9a7b-3c4d5e6f7a8b"
	genericKubeconfigSecret = "generic-token-kubeconfig-a1b2c3d4"
	shootTokenSecret        = "shoot-access-firewall-controller-manager"
	sshKeypairSecret        = "ssh-keypair-a1b2c3d4"
	// keypairPublicKey is the key pair Secret's public key: not the deployment's, which wins.
	keypairPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkQ7yB2n4cQ0m1sV3hT9pWz8xLq5dFe6rGu0aJkBcDe shoot-keypair"
	// infrastructureEgressIP is the SNAT IP of the Infrastructure's firewall egress rule, as
	// GEPM's InfrastructureConfig carries it.
	infrastructureEgressIP = "203.0.113.10"
	// release is the chart release whose namespaced Role the manager runs with.
	release = "gepm"
	// metalHMAC is the simulator's Metal-Admin key, given as GEPM gives it (METAL_AUTH_HMAC).
	metalHMAC = "metal-admin-key"
)

// shootCluster is the API server standing in for the shoot, with the FirewallMonitor and
// ClusterwideNetworkPolicy CRDs (GEPM's shoot-control-plane chart installs them).
type shootCluster struct {
	env    *envtest.Environment
	cfg    *rest.Config
	admin  client.Client
	server string // https://localhost:<port>, as the firewalls reach it (-shoot-api-url)
	// token is the manager's shoot token, as Gardener's token requestor writes it into the
	// seed's shoot-access Secret.
	token string
}

// startShoot starts the shoot and gives the manager its shoot identity the way GEPM does: a
// ServiceAccount in kube-system bound to a ClusterRole (upstream's system:firewall-controller-manager),
// here with exactly what Palisade needs there (agentaccess.ManagerShootRules plus the
// firewall-controller rules it grants).
func startShoot(t *testing.T) *shootCluster {
	g := NewWithT(t)
	env, cfg, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	admin, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	s := &shootCluster{env: env, cfg: cfg, admin: admin, server: localhostURL(g, cfg.Host)}

	const name = "system:firewall-controller-manager"
	rules := slices.Concat(agentaccess.ManagerShootRules(), agentaccess.ShootClusterRules(), agentaccess.ShootNamespaceRules())
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "firewall-controller-manager", Namespace: "kube-system"}}
	g.Expect(admin.Create(ctx, sa)).To(Succeed())
	g.Expect(admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules})).To(Succeed())
	g.Expect(admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}}})).To(Succeed())
	s.token = requestToken(g, cfg, sa)
	return s
}

// seedCluster is one seed: an API server with GEPM's webhook configurations for the shoot
// namespace, and the manager binary running in that namespace with the chart's namespaced Role.
type seedCluster struct {
	env     *envtest.Environment
	cfg     *rest.Config
	admin   client.Client
	server  string // https://localhost:<port> (-seed-api-url: GEPM refuses IPs)
	manager *managerProcess
}

// startSeed starts a seed, prepares the shoot namespace as Gardener and GEPM do, and starts the
// manager binary there with GEPM's arguments.
func startSeed(t *testing.T, name string, shoot *shootCluster, simURL string) *seedCluster {
	g := NewWithT(t)
	env, err := testenv.New()
	g.Expect(err).NotTo(HaveOccurred())
	mutating, validating := gepmWebhookConfigurations(shootNamespace)
	env.CRDs = gardenerExtensionCRDs()
	env.WebhookInstallOptions = envtest.WebhookInstallOptions{
		MutatingWebhooks:   []*admissionv1.MutatingWebhookConfiguration{mutating},
		ValidatingWebhooks: []*admissionv1.ValidatingWebhookConfiguration{validating},
	}
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	admin, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	s := &seedCluster{env: env, cfg: cfg, admin: admin, server: localhostURL(g, cfg.Host)}

	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shootNamespace}})).To(Succeed())
	serviceAccount := applyNamespacedRBAC(g, admin)
	applyGardenerSecrets(g, admin, shoot)
	applyGardenerExtensions(g, admin)

	wio := &env.WebhookInstallOptions
	args := gepmArguments(wio.LocalServingCertDir, s.server, shoot.server, simURL)
	metricsAddr, healthAddr := freeAddr(g), freeAddr(g)
	args = append(args, testArguments(wio.LocalServingPort, metricsAddr, healthAddr)...)
	kubeconfig := writeKubeconfig(g, t.TempDir(), cfg, requestToken(g, cfg, serviceAccount))
	s.manager = startManager(t, name, args, []string{"KUBECONFIG=" + kubeconfig, "METAL_AUTH_HMAC=" + metalHMAC}, metricsAddr, healthAddr)
	return s
}

// gepmArguments are GEPM's arguments for the manager (integration notes B5), in GEPM's flag
// forms; docs/integrations.md lists them.
func gepmArguments(certDir, seedURL, shootURL, metalURL string) []string {
	return []string{
		"-cert-dir=" + certDir, // GEPM: /certs, the secrets manager's serving certificate
		"-log-level=info",
		"-seed-api-url=" + seedURL,
		"-shoot-api-url=" + shootURL,
		"-internal-shoot-api-url=https://kube-apiserver",
		"-cluster-id=" + shootUID,
		"-enable-leader-election",
		"-metal-api-url=" + metalURL,
		"-namespace=" + shootNamespace,
		"-shoot-kubeconfig-secret-name=" + genericKubeconfigSecret,
		"-shoot-token-secret-name=" + shootTokenSecret,
		"-ssh-key-secret-name=" + sshKeypairSecret,
		"-shoot-token-path=/token",
		"-firewall-health-timeout=20m",
		"-create-timeout=10m",
	}
}

// testArguments are what a test on a shared machine adds: free ports instead of GEPM's fixed
// ones, metrics served without TokenReview (that needs cluster-wide rights a namespaced Role
// cannot give; GEPM's Prometheus scrapes plain HTTP), fast metal-api polling, and no safety
// backoff, so that a roll the test must not see would happen at once, not 10s later.
func testArguments(webhookPort int, metricsAddr, healthAddr string) []string {
	return []string{
		fmt.Sprintf("--webhook-port=%d", webhookPort),
		"-metrics-addr=" + metricsAddr,
		"--metrics-secure=false",
		"-health-addr=" + healthAddr,
		"--metal-poll-interval-creating=500ms",
		"--metal-poll-interval=2s",
		"--allocation-grace=10s",
		"--safety-backoff=0s",
	}
}

// gepmWebhookConfigurations are GEPM's webhook configurations for the manager of one shoot
// namespace (integration notes B5): defaulting on CREATE of objects labelled for the shoot,
// validation on CREATE and UPDATE in the shoot namespace, failurePolicy Fail, no match
// conditions. envtest points them at the manager's webhook server.
func gepmWebhookConfigurations(namespace string) (*admissionv1.MutatingWebhookConfiguration, *admissionv1.ValidatingWebhookConfiguration) {
	kinds := []struct{ singular, plural string }{{"firewall", "firewalls"}, {"firewallset", "firewallsets"}, {"firewalldeployment", "firewalldeployments"}}
	name := "firewall-controller-manager-" + namespace
	mutating := &admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	validating := &admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	rule := func(plural string, ops ...admissionv1.OperationType) []admissionv1.RuleWithOperations {
		return []admissionv1.RuleWithOperations{{Operations: ops, Rule: admissionv1.Rule{
			APIGroups: []string{"firewall.metal-stack.io"}, APIVersions: []string{"v2"}, Resources: []string{plural}}}}
	}
	service := func(path string) admissionv1.WebhookClientConfig {
		return admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{
			Name: "firewall-controller-manager", Namespace: namespace, Path: ptr.To(path), Port: ptr.To[int32](9443)}}
	}
	for _, k := range kinds {
		mutating.Webhooks = append(mutating.Webhooks, admissionv1.MutatingWebhook{
			Name:                    k.singular + ".mutating.firewall.metal-stack.io",
			ClientConfig:            service("/mutate-firewall-metal-stack-io-v2-" + k.singular),
			Rules:                   rule(k.plural, admissionv1.Create),
			FailurePolicy:           ptr.To(admissionv1.Fail),
			SideEffects:             ptr.To(admissionv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"gardener-shoot-namespace": namespace}},
		})
		validating.Webhooks = append(validating.Webhooks, admissionv1.ValidatingWebhook{
			Name:                    k.singular + ".validating.firewall.metal-stack.io",
			ClientConfig:            service("/validate-firewall-metal-stack-io-v2-" + k.singular),
			Rules:                   rule(k.plural, admissionv1.Create, admissionv1.Update),
			FailurePolicy:           ptr.To(admissionv1.Fail),
			SideEffects:             ptr.To(admissionv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": namespace}},
		})
	}
	return mutating, validating
}

// applyNamespacedRBAC applies what the chart renders for a release in the shoot namespace that
// is namespaced (ServiceAccount, Roles, RoleBindings) and the release's admission policy; no
// ClusterRole is bound. It returns the manager's ServiceAccount.
func applyNamespacedRBAC(g Gomega, admin client.Client) *corev1.ServiceAccount {
	objs, err := helmtool.Template(release, shootNamespace, "--set", "webhook.enabled=false", "--set", "replicaCount=1")
	g.Expect(err).NotTo(HaveOccurred())
	sa := &corev1.ServiceAccount{}
	for _, o := range objs {
		namespaced := slices.Contains([]string{"ServiceAccount", "Role", "RoleBinding"}, o.GetKind())
		policy := slices.Contains([]string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}, o.GetKind())
		if namespaced || policy {
			g.Expect(admin.Create(ctx, o)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
		}
		if o.GetKind() == "ServiceAccount" {
			sa.Name, sa.Namespace = o.GetName(), o.GetNamespace()
		}
	}
	g.Expect(sa.Name).NotTo(BeEmpty())
	return sa
}

// applyGardenerSecrets writes the Secrets Gardener keeps in the shoot namespace: the generic
// token kubeconfig (the shoot's server and CA, a token file), the manager's shoot token its
// token requestor refreshes, the ssh key pair, and the cloudprovider credentials GEPM takes
// METAL_AUTH_HMAC from.
func applyGardenerSecrets(g Gomega, admin client.Client, shoot *shootCluster) {
	generic := clientcmdapi.NewConfig()
	generic.Clusters["shoot"] = &clientcmdapi.Cluster{Server: shoot.server, CertificateAuthorityData: shoot.cfg.CAData}
	generic.AuthInfos["shoot"] = &clientcmdapi.AuthInfo{TokenFile: "/var/run/secrets/gardener.cloud/shoot/generic-kubeconfig/token"}
	generic.Contexts["shoot"] = &clientcmdapi.Context{Cluster: "shoot", AuthInfo: "shoot"}
	generic.CurrentContext = "shoot"
	raw, err := clientcmd.Write(*generic)
	g.Expect(err).NotTo(HaveOccurred())
	for name, data := range map[string]map[string][]byte{
		genericKubeconfigSecret: {"kubeconfig": raw},
		shootTokenSecret:        {"token": []byte(shoot.token)},
		sshKeypairSecret:        {"id_rsa": []byte("never read"), "id_rsa.pub": []byte(keypairPublicKey + "\n")},
		"cloudprovider":         {"metalAPIHMac": []byte(metalHMAC)},
	} {
		g.Expect(admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: shootNamespace}, Data: data})).To(Succeed())
	}
}

// gardenerExtensionCRDs are schemaless stand-ins for Gardener's Infrastructure and Extension
// CRDs: only the fields the manager reads and writes matter.
func gardenerExtensionCRDs() []*apiextensionsv1.CustomResourceDefinition {
	var crds []*apiextensionsv1.CustomResourceDefinition
	for kind, plural := range map[string]string{"Infrastructure": "infrastructures", "Extension": "extensions"} {
		crds = append(crds, &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: plural + ".extensions.gardener.cloud"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "extensions.gardener.cloud",
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.TrimSuffix(plural, "s")},
				Scope: apiextensionsv1.NamespaceScoped,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1alpha1", Served: true, Storage: true,
					Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: ptr.To(true),
					}},
				}},
			},
		})
	}
	return crds
}

// gardenerObject is an Infrastructure or Extension of the shoot namespace.
func gardenerObject(kind, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("extensions.gardener.cloud/v1alpha1")
	u.SetKind(kind)
	u.SetNamespace(shootNamespace)
	u.SetName(name)
	return u
}

// applyGardenerExtensions writes what Gardener keeps in the shoot namespace for the egress
// CIDRs: the Infrastructure (named after the shoot) with its firewall egress rule, and the acl
// Extension.
func applyGardenerExtensions(g Gomega, admin client.Client) {
	infra := gardenerObject("Infrastructure", "name")
	infra.Object["spec"] = map[string]any{"type": "metal", "providerConfig": map[string]any{"firewall": map[string]any{
		"egressRules": []any{map[string]any{"networkID": "internet", "ips": []any{infrastructureEgressIP}}}}}}
	g.Expect(admin.Create(ctx, infra)).To(Succeed())
	acl := gardenerObject("Extension", "acl")
	acl.Object["spec"] = map[string]any{"type": "acl"}
	g.Expect(admin.Create(ctx, acl)).To(Succeed())
}

// requestToken returns a token of sa, as the kubelet mounts one into the manager's pod.
func requestToken(g Gomega, cfg *rest.Config, sa *corev1.ServiceAccount) string {
	cs, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	tr, err := cs.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](7200)}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

// writeKubeconfig writes the manager's kubeconfig: this API server, the ServiceAccount token.
func writeKubeconfig(g Gomega, dir string, cfg *rest.Config, token string) string {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["seed"] = &clientcmdapi.Cluster{Server: localhostURL(g, cfg.Host), CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["manager"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["seed"] = &clientcmdapi.Context{Cluster: "seed", AuthInfo: "manager", Namespace: shootNamespace}
	kc.CurrentContext = "seed"
	path := filepath.Join(dir, "kubeconfig")
	g.Expect(clientcmd.WriteToFile(*kc, path)).To(Succeed())
	return path
}

// localhostURL turns envtest's host (an IP and port, with or without scheme) into
// https://localhost:<port>: GEPM passes DNS names, and envtest's certificate names localhost.
func localhostURL(g Gomega, host string) string {
	host = strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	_, port, err := net.SplitHostPort(strings.TrimSuffix(host, "/"))
	g.Expect(err).NotTo(HaveOccurred())
	return "https://localhost:" + port
}

func freeAddr(g Gomega) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

// managerProcess is the manager binary running as its own process.
type managerProcess struct {
	cmd         *exec.Cmd
	logPath     string
	done        chan error
	metricsAddr string
}

// startManager starts the binary and waits until /readyz answers (webhook server included).
// The log is shown when the test fails; the manager writes no secret into it.
func startManager(t *testing.T, name string, args, env []string, metricsAddr, healthAddr string) *managerProcess {
	g := NewWithT(t)
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	g.Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(managerBinary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	g.Expect(cmd.Start()).To(Succeed())
	p := &managerProcess{cmd: cmd, logPath: logFile.Name(), done: make(chan error, 1), metricsAddr: metricsAddr}
	go func() { p.done <- cmd.Wait(); _ = logFile.Close() }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() || os.Getenv("PALISADE_TEST_LOG") != "" {
			t.Logf("manager %s log (last lines):\n%s", name, tail(p.logPath, 80))
		}
	})

	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("manager %s exited before it was ready: %v\n%s", name, err, tail(p.logPath, 80))
		default:
		}
		resp, err := http.Get("http://" + healthAddr + "/readyz") //nolint:noctx // test readiness probe
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("manager %s not ready within 3 minutes\n%s", name, tail(p.logPath, 80))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// exited reports whether the process ended, and how.
func (p *managerProcess) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

func (p *managerProcess) stop() {
	if done, _ := p.exited(); done {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// buildManager builds cmd/manager into dir.
func buildManager(dir string) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "manager")
	cmd := exec.CommandContext(context.Background(), "go", "build", "-o", out, "./cmd/manager")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", errors.Join(err, errors.New(string(b)))
	}
	return out, nil
}
