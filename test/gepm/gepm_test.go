// Package gepm runs Palisade's manager binary the way Gardener's extension for metal-stack
// (gardener-extension-provider-metal, GEPM) deploys the upstream manager: one process per shoot
// namespace with GEPM's arguments and environment, a namespaced Role only, GEPM's webhook
// configurations, and the FirewallDeployment GEPM writes, applied unchanged. A second API server
// is the shoot, a third the seed a shoot's control plane migrates to; metal-api is the simulator.
package gepm

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	ignition "github.com/coreos/ignition/v2/config/v3_4/types"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
)

// gepmDeployment is the FirewallDeployment GEPM writes (integration notes B3), as
// docs/integrations.md shows it.
//
//go:embed testdata/firewalldeployment.yaml
var gepmDeployment []byte

// seedProject is the deployment's project; the simulator is given it.
const seedProject = "00000000-0000-0000-0000-000000000001"

var (
	ctx           = context.Background()
	managerBinary string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if err := testenv.EnsureAssets(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "palisade-gepm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if managerBinary, err = buildManager(dir); err != nil {
		fmt.Fprintln(os.Stderr, "building cmd/manager:", err)
		return 1
	}
	return m.Run()
}

func startSimulator(t *testing.T) (*metalsim.Simulator, string, metal.Client) {
	cfg := metalsim.DefaultConfig()
	cfg.Projects = append(cfg.Projects, metalsim.Project{ID: seedProject, Name: "shoot", TenantID: "tenant-a"})
	for i := range cfg.Networks {
		if cfg.Networks[i].ID == metalsim.DefaultPrivateNetwork {
			cfg.Networks[i].ProjectID = seedProject
		}
	}
	sim := metalsim.New(cfg)
	simURL, stop, err := sim.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	mc, err := metal.New(metal.Config{URL: simURL, HMACKey: metalHMAC, HMACAuthType: metal.AuthTypeAdmin, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return sim, simURL, mc
}

// GEPM's whole life cycle of a shoot's firewall, with the manager binary as GEPM runs it: the
// B3 deployment is allocated with upstream-layout userdata whose seed and shoot kubeconfigs work
// against the seed and the shoot; GEPM's updates (which cannot carry userdataContents, and pass
// no mutating webhook) roll nothing; the control plane migrates to a second seed (pause, copy,
// shallow delete) without a new machine; deleting the deployment there completes and frees it.
func TestGEPMEndToEnd(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(2 * time.Minute)
	g.SetDefaultEventuallyPollingInterval(250 * time.Millisecond)

	sim, simURL, mc := startSimulator(t)
	shoot := startShoot(t)
	source := startSeed(t, "source", shoot, simURL)
	deployKey := client.ObjectKey{Namespace: shootNamespace, Name: "shoot-firewall"}

	By(t, "the B3 deployment, applied unchanged, gets one firewall tagged with the shoot UID")
	g.Expect(source.admin.Create(ctx, decode(g), client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())
	var machine *metal.FirewallResponse
	g.Eventually(func(g Gomega) {
		fws, err := mc.FindFirewalls(ctx, &metal.FirewallFindRequest{AllocationProject: seedProject})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(fws).To(HaveLen(1))
		machine = fws[0]
	}).Should(Succeed())
	g.Expect(machine.Tags).To(ContainElement(v2.ClusterIDTag + "=" + shootUID))
	fw := runningFirewall(g, source.admin)
	g.Expect(fw.Name).To(Equal(machine.Allocation.Hostname), "the firewall-controller finds its Firewall by hostname")

	By(t, "the userdata read back from metal-api is in the upstream layout")
	files, units := ignitionOf(g, machine.Allocation.UserData)
	g.Expect(units).To(Equal([]string{"firewall-controller.service"}), "the one unit Palisade ships; an upstream image enables its droptailer itself")
	seedKubeconfig, shootKubeconfig := files["/etc/firewall-controller/.seed-kubeconfig"], files["/etc/firewall-controller/.kubeconfig"]
	g.Expect(seedKubeconfig).NotTo(BeEmpty())
	g.Expect(shootKubeconfig).NotTo(BeEmpty())

	By(t, "the deployment's own ssh key wins over the key pair Secret's (-ssh-key-secret-name defaults empty keys only)")
	g.Expect(machine.Allocation.SSHPubKeys).To(Equal([]string{gepmSSHKey(g)}))
	g.Expect(machine.Allocation.SSHPubKeys).NotTo(ContainElement(keypairPublicKey))

	By(t, "the upstream firewall-controller reads its kubeconfigs once: their tokens live a year (--upstream-agent-token-ttl)")
	for _, kubeconfig := range []string{seedKubeconfig, shootKubeconfig} {
		g.Expect(time.Until(tokenExpiry(g, kubeconfig))).To(BeNumerically(">", 364*24*time.Hour))
	}

	By(t, "the seed kubeconfig works as the upstream firewall-controller uses it")
	seedCfg := loadKubeconfig(g, seedKubeconfig, shootNamespace)
	g.Expect(seedCfg.Host).To(Equal(source.server), "the server is -seed-api-url")
	seedAgent := newClient(g, seedCfg)
	var own v2.Firewall
	g.Expect(seedAgent.Get(ctx, client.ObjectKeyFromObject(fw), &own)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(seedAgent.Get(ctx, client.ObjectKeyFromObject(fw), &own)).To(Succeed())
		g.Expect(own.Status.ShootAccess).To(Equal(&v2.ShootAccess{GenericKubeconfigSecretName: genericKubeconfigSecret,
			TokenSecretName: shootTokenSecret, Namespace: shootNamespace, APIServerURL: shoot.server}))
	}).Should(Succeed())
	g.Expect(seedAgent.List(ctx, &v2.FirewallDeploymentList{}, client.InNamespace(shootNamespace))).NotTo(Succeed(), "nothing but its Firewall")

	By(t, "the shoot is reached both ways: through status.shootAccess and through the shoot kubeconfig")
	viaShootAccess := shootAccessClient(g, seedAgent, own.Status.ShootAccess)
	g.Eventually(func(g Gomega) {
		var mon v2.FirewallMonitor
		g.Expect(viaShootAccess.Get(ctx, client.ObjectKey{Namespace: "firewall", Name: fw.Name}, &mon)).To(Succeed())
	}).Should(Succeed(), "the manager writes the FirewallMonitor into the shoot")
	shootCfg := loadKubeconfig(g, shootKubeconfig, shootNamespace)
	g.Expect(shootCfg.Host).To(Equal(shoot.server), "the server is -shoot-api-url")
	shootAgent := newClient(g, shootCfg)
	review := &authenticationv1.SelfSubjectReview{}
	g.Expect(shootAgent.Create(ctx, review)).To(Succeed())
	g.Expect(review.Status.UserInfo.Username).To(Equal("system:serviceaccount:firewall:firewall-controller-shoot-access-shoot-firewall"),
		"the firewall-controller's own identity in the shoot, named as upstream names it")
	g.Expect(shootAgent.List(ctx, &corev1.ServiceList{})).To(Succeed())
	policy := &v1.ClusterwideNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow-dns", Namespace: "firewall"}}
	g.Expect(shoot.admin.Create(ctx, policy)).To(Succeed())
	policy.Status.State = "deployed"
	g.Expect(shootAgent.Status().Update(ctx, policy)).To(Succeed())
	g.Eventually(func() error {
		var mon v2.FirewallMonitor
		if err := shootAgent.Get(ctx, client.ObjectKey{Namespace: "firewall", Name: fw.Name}, &mon); err != nil {
			return err
		}
		mon.ControllerStatus = &v2.ControllerStatus{ControllerVersion: "v2.5.0", Updated: metav1.Now()}
		return shootAgent.Update(ctx, &mon)
	}).Should(Succeed(), "the firewall-controller reports into its monitor")
	g.Expect(apierrors.IsForbidden(shootAgent.List(ctx, &corev1.SecretList{}))).To(BeTrue(), "no Secrets outside the firewall namespace")

	By(t, "the egress CIDRs are published to the Infrastructure under the chart's namespaced Role, and acl is asked to reconcile")
	var externalIP string
	for _, n := range fw.Status.FirewallNetworks {
		if n.NetworkType != nil && *n.NetworkType == metal.NetworkTypeExternal && len(n.IPs) > 0 {
			externalIP = n.IPs[0]
		}
	}
	g.Expect(externalIP).NotTo(BeEmpty())
	g.Eventually(func(g Gomega) {
		infra := gardenerObject("Infrastructure", "name")
		g.Expect(source.admin.Get(ctx, client.ObjectKeyFromObject(infra), infra)).To(Succeed())
		cidrs, _, _ := unstructured.NestedStringSlice(infra.Object, "status", "egressCIDRs")
		g.Expect(cidrs).To(ConsistOf(externalIP+"/32", infrastructureEgressIP+"/32"))
		acl := gardenerObject("Extension", "acl")
		g.Expect(source.admin.Get(ctx, client.ObjectKeyFromObject(acl), acl)).To(Succeed())
		g.Expect(acl.GetAnnotations()).To(HaveKeyWithValue("gardener.cloud/operation", "reconcile"))
	}).Should(Succeed())

	By(t, "metrics are served without TokenReview rights")
	resp, err := http.Get("http://" + source.manager.metricsAddr + "/metrics") //nolint:noctx // test
	g.Expect(err).NotTo(HaveOccurred())
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(string(body)).To(ContainSubstring("controller_runtime_reconcile_total"))

	By(t, "GEPM's CreateOrUpdate sends the deployment without userdataContents: nothing rolls")
	allocations := sim.RequestCount(metal.OpFirewallAllocate)
	gepmUpdate(g, source.admin, deployKey)
	g.Eventually(func(g Gomega) {
		d := &v2.FirewallDeployment{}
		g.Expect(source.admin.Get(ctx, deployKey, d)).To(Succeed())
		g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
	}).Should(Succeed(), "the manager saw GEPM's update")
	g.Consistently(func(g Gomega) {
		var sets v2.FirewallSetList
		g.Expect(source.admin.List(ctx, &sets, client.InNamespace(shootNamespace))).To(Succeed())
		g.Expect(sets.Items).To(HaveLen(1))
		g.Expect(sim.RequestCount(metal.OpFirewallAllocate)).To(Equal(allocations))
	}, 5*time.Second).Should(Succeed())

	By(t, "control-plane migration: pause the source, copy the Firewalls to the target seed, create the deployment there")
	target := startSeed(t, "target", shoot, simURL)
	g.Eventually(func() error {
		d := &v2.FirewallDeployment{}
		if err := source.admin.Get(ctx, deployKey, d); err != nil {
			return err
		}
		metav1.SetMetaDataAnnotation(&d.ObjectMeta, v2.PausedAnnotation, "true")
		return source.admin.Update(ctx, d)
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(source.admin.Get(ctx, client.ObjectKeyFromObject(fw), fw)).To(Succeed())
		g.Expect(fw.Status.Conditions).To(ContainElement(HaveField("Type", v2.ConditionPaused)))
	}).Should(Succeed())
	sim.ResetRequests()
	var state v2.FirewallList
	g.Expect(source.admin.List(ctx, &state, client.InNamespace(shootNamespace))).To(Succeed())
	for i := range state.Items {
		// What GEPM keeps in Infrastructure.status.state (B10).
		copied := state.Items[i].DeepCopy()
		copied.ResourceVersion, copied.UID, copied.OwnerReferences, copied.ManagedFields = "", "", nil, nil
		copied.CreationTimestamp, copied.Status = metav1.Time{}, v2.FirewallStatus{}
		g.Expect(target.admin.Create(ctx, copied)).To(Succeed())
	}
	g.Expect(target.admin.Create(ctx, decode(g))).To(Succeed())

	By(t, "shallow delete on the source: finalizers removed, deleted with orphan propagation")
	shallowDelete(g, source.admin)

	By(t, "the target adopts the same machine; nothing is allocated or freed")
	g.Eventually(func(g Gomega) {
		adopted := runningFirewall(g, target.admin)
		g.Expect(adopted.Name).To(Equal(fw.Name))
		g.Expect(metav1.GetControllerOf(adopted)).NotTo(BeNil(), "adopted by the target's set")
		g.Expect(adopted.Status.MachineStatus.MachineID).To(Equal(machine.ID))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(sim.RequestCount(metal.OpFirewallAllocate)).To(BeZero())
		g.Expect(sim.RequestCount(metal.OpMachineFree)).To(BeZero())
	}, 5*time.Second).Should(Succeed())
	fws, err := mc.FindFirewalls(ctx, &metal.FirewallFindRequest{AllocationProject: seedProject})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fws).To(HaveLen(1), "no extra machine")
	g.Expect(fws[0].ID).To(Equal(machine.ID))

	By(t, "GEPM deletes the deployment on the target: it completes despite GEPM's finalizer and frees the machine")
	g.Expect(target.admin.Delete(ctx, &v2.FirewallDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: deployKey.Namespace, Name: deployKey.Name}})).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(target.admin.Get(ctx, deployKey, &v2.FirewallDeployment{}))
	}).Should(BeTrue(), "GEPM polls for NotFound")
	g.Eventually(func(g Gomega) {
		m, err := mc.GetMachine(ctx, machine.ID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(m.Allocation).To(BeNil())
	}).Should(Succeed(), "the machine is freed")

	By(t, "no token is in the managers' logs")
	tokens := []string{shoot.token, tokenOf(g, seedKubeconfig), tokenOf(g, shootKubeconfig)}
	for _, s := range []*seedCluster{source, target} {
		done, err := s.manager.exited()
		g.Expect(done).To(BeFalse(), "a manager exited: %v", err)
		logs, err := os.ReadFile(s.manager.logPath)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(logs).NotTo(BeEmpty())
		for _, token := range tokens {
			g.Expect(string(logs)).NotTo(ContainSubstring(token))
		}
		g.Expect(string(logs)).NotTo(ContainSubstring("Publishing the egress CIDRs to Gardener failed"), "the Role grants what publishing needs")
	}
}

// gepmSSHKey is the ssh key of the B3 deployment.
func gepmSSHKey(g Gomega) string {
	keys, _, err := unstructured.NestedStringSlice(decode(g).Object, "spec", "template", "spec", "sshPublicKeys")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(keys).To(HaveLen(1))
	return keys[0]
}

// tokenExpiry is the exp claim of a kubeconfig's bearer token (a JWT; not verified here).
func tokenExpiry(g Gomega, kubeconfig string) time.Time {
	parts := strings.Split(tokenOf(g, kubeconfig), ".")
	g.Expect(parts).To(HaveLen(3))
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	g.Expect(err).NotTo(HaveOccurred())
	var claims struct {
		Exp int64 `json:"exp"`
	}
	g.Expect(json.Unmarshal(payload, &claims)).To(Succeed())
	return time.Unix(claims.Exp, 0)
}

func tokenOf(g Gomega, kubeconfig string) string {
	kc, err := clientcmd.Load([]byte(kubeconfig))
	g.Expect(err).NotTo(HaveOccurred())
	token := kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo].Token
	g.Expect(token).NotTo(BeEmpty())
	return token
}

func By(t *testing.T, step string) {
	t.Helper()
	t.Log("STEP: " + step)
}

func decode(g Gomega) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal(gepmDeployment, &u.Object)).To(Succeed())
	return u
}

// runningFirewall returns the only Firewall of the shoot namespace once it runs.
func runningFirewall(g Gomega, c client.Client) *v2.Firewall {
	var list v2.FirewallList
	g.Eventually(func(g Gomega) {
		g.Expect(c.List(ctx, &list, client.InNamespace(shootNamespace))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1))
		g.Expect(list.Items[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
		g.Expect(list.Items[0].Status.MachineStatus).NotTo(BeNil())
	}).Should(Succeed())
	return &list.Items[0]
}

// gepmUpdate does what GEPM's CreateOrUpdate does with its upstream types: the object comes
// back without userdataContents, the reconcile annotation is set.
func gepmUpdate(g Gomega, c client.Client, key client.ObjectKey) {
	g.Eventually(func() error {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(v2.GroupVersion.WithKind("FirewallDeployment"))
		if err := c.Get(ctx, key, u); err != nil {
			return err
		}
		unstructured.RemoveNestedField(u.Object, "spec", "template", "spec", "userdataContents")
		annotations := u.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[v2.ReconcileAnnotation] = "true"
		u.SetAnnotations(annotations)
		return c.Update(ctx, u)
	}).Should(Succeed())
}

// shallowDelete is GEPM's Migrate on the source seed (B10): every Firewall, FirewallSet and
// FirewallDeployment loses its finalizers and is deleted with orphan propagation.
func shallowDelete(g Gomega, c client.Client) {
	lists := []client.ObjectList{&v2.FirewallList{}, &v2.FirewallSetList{}, &v2.FirewallDeploymentList{}}
	g.Eventually(func() error { return harness.ShallowDelete(ctx, c, shootNamespace) }).Should(Succeed())
	g.Eventually(func(g Gomega) {
		for _, list := range lists {
			g.Expect(c.List(ctx, list, client.InNamespace(shootNamespace))).To(Succeed())
			// A finalizer the running, paused source manager puts back is released without freeing.
			g.Expect(meta.LenList(list)).To(BeZero())
		}
	}).Should(Succeed())
}

// ignitionOf returns the files and the enabled units of Ignition userdata.
func ignitionOf(g Gomega, raw string) (map[string]string, []string) {
	var cfg ignition.Config
	g.Expect(json.Unmarshal([]byte(raw), &cfg)).To(Succeed())
	files := map[string]string{}
	for _, f := range cfg.Storage.Files {
		g.Expect(f.Contents.Source).NotTo(BeNil(), f.Path)
		g.Expect(f.Mode).NotTo(BeNil(), f.Path)
		if strings.Contains(f.Path, "kubeconfig") {
			g.Expect(*f.Mode).To(Equal(0o600), f.Path)
		}
		header, data, ok := strings.Cut(strings.TrimPrefix(*f.Contents.Source, "data:"), ",")
		g.Expect(ok).To(BeTrue(), f.Path)
		if strings.HasSuffix(header, ";base64") {
			b, err := base64.StdEncoding.DecodeString(data)
			g.Expect(err).NotTo(HaveOccurred())
			files[f.Path] = string(b)
		} else {
			s, err := url.PathUnescape(data)
			g.Expect(err).NotTo(HaveOccurred())
			files[f.Path] = s
		}
	}
	var units []string
	for _, u := range cfg.Systemd.Units {
		if u.Enabled != nil && *u.Enabled {
			units = append(units, u.Name)
		}
	}
	return files, units
}

// loadKubeconfig parses a generated kubeconfig as the upstream firewall-controller does: the
// seed namespace is the current context's name.
func loadKubeconfig(g Gomega, raw, wantContext string) *rest.Config {
	kc, err := clientcmd.Load([]byte(raw))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(kc.CurrentContext).To(Equal(wantContext))
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, &clientcmd.ConfigOverrides{}).ClientConfig()
	g.Expect(err).NotTo(HaveOccurred())
	return cfg
}

func newClient(g Gomega, cfg *rest.Config) client.Client {
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

// shootAccessClient builds the shoot client the upstream firewall-controller builds from
// status.shootAccess: the generic kubeconfig and the token from the two seed Secrets (read with
// the seed kubeconfig), the server from apiServerURL.
func shootAccessClient(g Gomega, seed client.Client, access *v2.ShootAccess) client.Client {
	var generic, token corev1.Secret
	g.Expect(seed.Get(ctx, client.ObjectKey{Namespace: access.Namespace, Name: access.GenericKubeconfigSecretName}, &generic)).To(Succeed())
	g.Expect(seed.Get(ctx, client.ObjectKey{Namespace: access.Namespace, Name: access.TokenSecretName}, &token)).To(Succeed())
	kc, err := clientcmd.Load(generic.Data["kubeconfig"])
	g.Expect(err).NotTo(HaveOccurred())
	for _, c := range kc.Clusters {
		c.Server = access.APIServerURL
	}
	for _, u := range kc.AuthInfos {
		u.Token, u.TokenFile = string(token.Data["token"]), ""
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, &clientcmd.ConfigOverrides{}).ClientConfig()
	g.Expect(err).NotTo(HaveOccurred())
	return newClient(g, cfg)
}
