// Package userdata checks typed userdataContents end to end: the seed's FirewallDeployment goes
// through the real API server and the webhooks (over TLS), the manager provisions the agent's
// identity and renders the Ignition userdata, and the simulator receives it with the allocation.
// The generated kubeconfig is then used as the agent would use it.
package userdata

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ignition "github.com/coreos/ignition/v2/config/v3_4/types"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
	"github.com/palisade-fw/palisade/internal/userdata"
)

// seedProject is the project of the seed's example; the simulator is given it, so the example
// runs unchanged.
const seedProject = "00000000-0000-0000-0000-000000000001"

var (
	stack *harness.Stack
	ctx   = context.Background()
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	logger := harness.TestLogger()
	simCfg := metalsim.DefaultConfig()
	simCfg.Projects = append(simCfg.Projects, metalsim.Project{ID: seedProject, Name: "seed-example", TenantID: "tenant-a"})
	for i := range simCfg.Networks {
		if simCfg.Networks[i].ID == metalsim.DefaultPrivateNetwork {
			simCfg.Networks[i].ProjectID = seedProject
		}
	}
	var err error
	stack, err = harness.Start(harness.Options{Webhooks: true, Simulator: &simCfg, Logger: logger, Manager: func(o *manager.Options) {
		o.Firewall.ShootAccess = gardenerShootAccess // as GEPM's arguments configure it (docs/integrations.md)
		o.SSHKeySecret = sshKeypairSecret            // -ssh-key-secret-name
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = stack.Stop() }()
	return m.Run()
}

func TestSeedExampleEndToEnd(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	g.SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	c := stack.Client

	ns := newNamespace(g, "seed-example")
	other := newNamespace(g, "other-tenant")
	deploy := seedExample(g, ns, nil) // accepted unchanged

	By(t, "the workload kubeconfig Secret does not exist yet: the deployment waits and nothing is allocated")
	g.Eventually(func(g Gomega) {
		got := get(g, deploy)
		cond := meta.FindStatusCondition(got.Status.Conditions, v2.ConditionUserdataReady)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(cond.Reason).To(Equal(v2.ReasonSecretMissing))
		g.Expect(cond.Message).To(ContainSubstring("shoot-kubeconfig"))
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v2.ConditionRBACProvisioned)).To(BeTrue())
	}).Should(Succeed())
	g.Consistently(func() int { return len(allocatedIn(ns)) }, 2*time.Second).Should(BeZero())
	var sets v2.FirewallSetList
	g.Expect(c.List(ctx, &sets, client.InNamespace(ns))).To(Succeed())
	g.Expect(sets.Items).To(BeEmpty())

	By(t, "the generated kubeconfig Secret is owned by the deployment and its token is not in the status")
	generated := &corev1.Secret{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "seed-kubeconfig"}, generated)).To(Succeed())
	g.Expect(metav1.IsControlledBy(generated, get(g, deploy))).To(BeTrue())
	g.Expect(generated.Labels).To(HaveKeyWithValue(userdata.GeneratedKubeconfigLabel, "true"))

	By(t, "the workload kubeconfig appears: the firewall is allocated within 5 s, driven by the Secret watch")
	shoot := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "shoot-kubeconfig", Namespace: ns},
		StringData: map[string]string{v2.DefaultUserdataKey: "apiVersion: v1\nkind: Config\n# workload cluster v1\n"},
	}
	g.Expect(c.Create(ctx, shoot)).To(Succeed())
	g.Eventually(func() int { return len(allocatedIn(ns)) }, 5*time.Second, 50*time.Millisecond).Should(Equal(1))

	machine := allocatedIn(ns)[0]
	files := ignitionFiles(g, machine.Allocation.UserData)
	g.Expect(files).To(HaveKey("/etc/firewall-controller/config.yaml"))
	g.Expect(files["/etc/firewall-controller/config.yaml"]).To(ContainSubstring("source: static"))
	g.Expect(files).To(HaveKeyWithValue("/etc/firewall-controller/shoot.yaml", ContainSubstring("workload cluster v1")))
	g.Expect(files).To(HaveKey("/etc/firewall-controller/seed.yaml"))

	By(t, "the generated kubeconfig works for the agent's own Firewall and nothing else")
	agent := agentClient(g, []byte(files["/etc/firewall-controller/seed.yaml"]))
	var fws v2.FirewallList
	g.Eventually(func(g Gomega) {
		g.Expect(c.List(ctx, &fws, client.InNamespace(ns))).To(Succeed())
		g.Expect(fws.Items).To(HaveLen(1))
	}).Should(Succeed())
	own := &v2.Firewall{}
	// The agent's Role names its deployment's firewalls; the deployment adds a new one when its
	// set reports it, long before a real machine has booted.
	g.Eventually(func() error { return agent.Get(ctx, client.ObjectKeyFromObject(&fws.Items[0]), own) }).Should(Succeed(), "the agent reads its Firewall")
	g.Expect(own.Name).To(Equal(machine.Allocation.Hostname))

	patch := client.MergeFrom(own.DeepCopy())
	own.Status.ControllerStatus = &v2.ControllerConnection{ActualVersion: "e2e", Updated: metav1.Now()}
	g.Expect(agent.Status().Patch(ctx, own, patch)).To(Succeed(), "the agent reports into the Firewall status")
	specPatch := client.MergeFrom(own.DeepCopy())
	own.Spec.Image = "something-else"
	g.Expect(apierrors.IsForbidden(agent.Patch(ctx, own, specPatch))).To(BeTrue(), "the agent must not change the spec")

	foreign := pausedFirewall(other)
	g.Expect(c.Create(ctx, foreign)).To(Succeed())
	err := agent.Get(ctx, client.ObjectKeyFromObject(foreign), &v2.Firewall{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "reading another namespace's Firewall: %v", err)
	g.Expect(agent.Get(ctx, client.ObjectKeyFromObject(shoot), &corev1.Secret{})).To(Succeed(), "a referenced Secret")
	unrelated := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: ns}, StringData: map[string]string{"k": "v"}}
	g.Expect(c.Create(ctx, unrelated)).To(Succeed())
	g.Expect(apierrors.IsForbidden(agent.Get(ctx, client.ObjectKeyFromObject(unrelated), &corev1.Secret{}))).To(BeTrue(), "an unrelated Secret")

	By(t, "a reconcile with nothing changed renders byte-identical userdata and rolls nothing")
	current := get(g, deploy)
	p := client.MergeFrom(current.DeepCopy())
	metav1.SetMetaDataAnnotation(&current.ObjectMeta, "e2e.palisade.dev/poke", "1")
	g.Expect(c.Patch(ctx, current, p)).To(Succeed())
	res, err := userdata.New(c).Render(ctx, ns, &fws.Items[0].Spec)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Userdata).To(Equal(machine.Allocation.UserData), "rendering again gives the allocated bytes")
	g.Consistently(func(g Gomega) {
		g.Expect(c.List(ctx, &sets, client.InNamespace(ns))).To(Succeed())
		g.Expect(sets.Items).To(HaveLen(1))
	}, 2*time.Second).Should(Succeed())

	By(t, "a changed workload kubeconfig rolls: a new FirewallSet")
	firstSet := sets.Items[0].Name
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(shoot), shoot)).To(Succeed())
	shoot.Data[v2.DefaultUserdataKey] = []byte("apiVersion: v1\nkind: Config\n# workload cluster v2\n")
	g.Expect(c.Update(ctx, shoot)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(c.List(ctx, &sets, client.InNamespace(ns))).To(Succeed())
		names := make([]string, 0, len(sets.Items))
		for _, s := range sets.Items {
			names = append(names, s.Name)
		}
		g.Expect(names).To(HaveLen(2))
		g.Expect(names).To(ContainElement(firstSet))
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		var hostnames []string
		for _, m := range allocatedIn(ns) {
			hostnames = append(hostnames, m.Allocation.Hostname)
			if m.Allocation.Hostname != machine.Allocation.Hostname {
				g.Expect(ignitionFiles(g, m.Allocation.UserData)).To(HaveKeyWithValue("/etc/firewall-controller/shoot.yaml", ContainSubstring("workload cluster v2")))
			}
		}
		g.Expect(hostnames).To(HaveLen(2), "the new firewall is allocated next to the old one")
	}).Should(Succeed())
}

// TestLegacyUserdataStillWorks: an upstream manifest with the opaque userdata string is
// accepted and passed through verbatim; both forms together are refused.
func TestLegacyUserdataStillWorks(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(g, "legacy")
	legacy := `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/legacy"}]}}`
	withLegacy := func(spec map[string]any) {
		spec["userdata"] = legacy
		spec["project"] = metalsim.DefaultOtherProject
		spec["networks"] = []any{metalsim.DefaultExternalNetwork, metalsim.DefaultOtherPrivate}
	}
	_, err := createSeedExample(ns, withLegacy)
	g.Expect(err).To(MatchError(ContainSubstring("userdata")), "userdata and userdataContents together are refused")

	seedExample(g, ns, func(spec map[string]any) {
		withLegacy(spec)
		delete(spec, "userdataContents")
	})
	g.Eventually(func() []metalsim.MachineSnapshot { return allocatedIn(ns) }, 60*time.Second).Should(HaveLen(1))
	g.Expect(allocatedIn(ns)[0].Allocation.UserData).To(Equal(legacy))
}

// seedExample creates the seed's example in namespace as a user would apply it (the raw
// manifest, so that server-side defaults apply) after mutate changed it.
func seedExample(g Gomega, namespace string, mutate func(spec map[string]any)) *v2.FirewallDeployment {
	deploy, err := createSeedExample(namespace, mutate)
	g.Expect(err).NotTo(HaveOccurred())
	return deploy
}

// createSeedExample is seedExample returning the API server's answer; mutate gets the
// template's spec.
func createSeedExample(namespace string, mutate func(spec map[string]any)) (*v2.FirewallDeployment, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "samples", "firewall_v2_firewalldeployment_userdatacontents.yaml"))
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
		return nil, err
	}
	obj.SetNamespace(namespace)
	if mutate != nil {
		spec, _, err := unstructured.NestedMap(obj.Object, "spec", "template", "spec")
		if err != nil {
			return nil, err
		}
		mutate(spec)
		if err := unstructured.SetNestedMap(obj.Object, spec, "spec", "template", "spec"); err != nil {
			return nil, err
		}
	}
	if err := stack.Client.Create(ctx, obj); err != nil {
		return nil, err
	}
	deploy := &v2.FirewallDeployment{}
	return deploy, stack.Client.Get(ctx, client.ObjectKeyFromObject(obj), deploy)
}

func newNamespace(g Gomega, prefix string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	g.Expect(stack.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func get(g Gomega, d *v2.FirewallDeployment) *v2.FirewallDeployment {
	got := &v2.FirewallDeployment{}
	g.Expect(stack.Client.Get(ctx, client.ObjectKeyFromObject(d), got)).To(Succeed())
	return got
}

func allocatedIn(namespace string) []metalsim.MachineSnapshot {
	var out []metalsim.MachineSnapshot
	for _, m := range stack.Sim.Machines() {
		if m.Allocation != nil && slices.Contains(m.Tags, v2.NamespaceTag+"="+namespace) {
			out = append(out, m)
		}
	}
	return out
}

// ignitionFiles decodes the files of Ignition userdata: path -> content.
func ignitionFiles(g Gomega, raw string) map[string]string {
	var cfg ignition.Config
	g.Expect(json.Unmarshal([]byte(raw), &cfg)).To(Succeed())
	files := map[string]string{}
	for _, f := range cfg.Storage.Files {
		g.Expect(f.Contents.Source).NotTo(BeNil(), f.Path)
		files[f.Path] = decodeDataURL(g, *f.Contents.Source)
	}
	return files
}

// decodeDataURL decodes the RFC 2397 data URLs Ignition files carry (percent or base64).
func decodeDataURL(g Gomega, source string) string {
	header, data, ok := strings.Cut(strings.TrimPrefix(source, "data:"), ",")
	g.Expect(ok).To(BeTrue(), "not a data URL: %.40s", source)
	if strings.HasSuffix(header, ";base64") {
		out, err := base64.StdEncoding.DecodeString(data)
		g.Expect(err).NotTo(HaveOccurred())
		return string(out)
	}
	out, err := url.PathUnescape(data)
	g.Expect(err).NotTo(HaveOccurred())
	return out
}

func agentClient(g Gomega, kubeconfig []byte) client.Client {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

func pausedFirewall(namespace string) *v2.Firewall {
	return &v2.Firewall{
		ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: namespace, Annotations: map[string]string{v2.PausedAnnotation: "true"}},
		Spec: v2.FirewallSpec{
			Size: metalsim.DefaultSize, Image: metalsim.DefaultImage, Partition: metalsim.DefaultPartition,
			Project: metalsim.DefaultProject, Networks: []string{metalsim.DefaultExternalNetwork},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// By logs a step, so that a failure says where it happened.
func By(t *testing.T, step string) { t.Helper(); t.Log("STEP: " + step) }
