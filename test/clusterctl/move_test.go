// Package clusterctl hands firewalls over between two management clusters (two envtest API
// servers, each with its own Palisade manager, one shared metal-api simulator): a Cluster API
// cluster moved with the real clusterctl library, and Gardener's control-plane migration. The
// machine must be handed over: no metal-api write during the move, no roll after it, the same
// machine adopted on the target and its polling and monitor resumed there.
package clusterctl

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clusterctlclient "sigs.k8s.io/cluster-api/cmd/clusterctl/client"
	clusterctlcluster "sigs.k8s.io/cluster-api/cmd/clusterctl/client/cluster"
	clusterctlconfig "sigs.k8s.io/cluster-api/cmd/clusterctl/client/config"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
)

var clusterGVK = schema.GroupVersionKind{Group: "cluster.x-k8s.io", Version: "v1beta2", Kind: "Cluster"}

// metalWrites are the metal-api operations that change a machine.
var metalWrites = []string{metal.OpFirewallAllocate, metal.OpMachineFree, metal.OpMachineUpdate, metal.OpMachineReinstall}

func TestMoveHandsOverTheFirewall(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(90 * time.Second)
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	ctx := context.Background()
	logf.SetLogger(harness.TestLogger())

	source, err := harness.Start(harness.Options{Webhooks: true, Logger: harness.TestLogger()})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = source.Stop() })
	// The target shares the source's metal-api: both management clusters manage the same partition.
	target := harness.New(harness.Options{Webhooks: true, Logger: harness.TestLogger()})
	g.Expect(target.StartAPIServer()).To(Succeed())
	target.Sim, target.SimURL, target.Metal = source.Sim, source.SimURL, source.Metal
	g.Expect(target.StartManager()).To(Succeed())
	t.Cleanup(func() { _ = target.Stop() })
	for _, s := range []*harness.Stack{source, target} {
		installClusterAPI(g, s.Config)
	}

	const ns, cluster = "capi-move", "move-me"
	c := source.Client
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	capiCluster := createProvisionedCluster(g, c, ns, cluster)

	By(t, "the seed's CAPI example, owned by the Cluster, reaches a running firewall on the source")
	for _, obj := range clusterObjects(g, ns, cluster, capiCluster) {
		g.Expect(c.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed(), "%T %s", obj, obj.GetName())
	}
	deployKey := client.ObjectKey{Namespace: ns, Name: cluster + "-firewall"}
	var machineID, fwName, setName string
	g.Eventually(func(g Gomega) {
		fws := firewalls(g, c, ns)
		g.Expect(fws).To(HaveLen(1))
		g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
		g.Expect(fws[0].Status.MachineStatus).NotTo(BeNil())
		machineID, fwName = fws[0].Status.MachineStatus.MachineID, fws[0].Name
		setName = metav1.GetControllerOf(&fws[0]).Name
		var d v2.FirewallDeployment
		g.Expect(c.Get(ctx, deployKey, &d)).To(Succeed())
		g.Expect(d.Status.ReadyReplicas).To(Equal(1))
	}).Should(Succeed())

	By(t, "clusterctl pauses the Cluster (spec.paused) itself: no manual pause of the deployment")
	By(t, "clusterctl move from the source to the target management cluster")
	source.Sim.ResetRequests()
	dir := t.TempDir()
	configPath := filepath.Join(dir, "clusterctl.yaml")
	g.Expect(os.WriteFile(configPath, []byte("{}\n"), 0o600)).To(Succeed())
	cc := newClusterctl(g, ctx, configPath)
	g.Expect(cc.Move(ctx, clusterctlclient.MoveOptions{
		FromKubeconfig: clusterctlclient.Kubeconfig{Path: writeKubeconfig(g, dir, "source", source.Config)},
		ToKubeconfig:   clusterctlclient.Kubeconfig{Path: writeKubeconfig(g, dir, "target", target.Config)},
		Namespace:      ns,
	})).To(Succeed())

	g.Expect(writes(source.Sim)).To(BeEmpty(), "metal-api writes during the move")
	for _, kind := range []client.ObjectList{&v2.FirewallDeploymentList{}, &v2.FirewallSetList{}, &v2.FirewallList{}} {
		g.Eventually(func(g Gomega) {
			g.Expect(c.List(ctx, kind, client.InNamespace(ns))).To(Succeed())
			items, _ := meta.ExtractList(kind)
			var left []string
			for _, o := range items {
				mo, _ := meta.Accessor(o)
				left = append(left, fmt.Sprintf("%s deleting=%v finalizers=%v owners=%v", mo.GetName(), mo.GetDeletionTimestamp() != nil, mo.GetFinalizers(), mo.GetOwnerReferences()))
			}
			g.Expect(left).To(BeEmpty())
		}).Should(Succeed(), "the source keeps no %T", kind)
	}
	m, ok := source.Sim.Machine(machineID)
	g.Expect(ok).To(BeTrue())
	g.Expect(m.Allocation).NotTo(BeNil(), "the machine is still allocated")
	g.Expect(m.Allocation.Hostname).To(Equal(fwName))

	By(t, "resume on the target: the same machine is adopted, polled, and its monitor written, without a roll")
	tc := target.Client
	// clusterctl unpauses the Cluster on the target after the move; the end of that pause must
	// reach the firewall by itself (no reconcile request, no annotation change).
	g.Eventually(func(g Gomega) {
		fws := firewalls(g, tc, ns)
		g.Expect(fws).To(HaveLen(1))
		g.Expect(fws[0].Name).To(Equal(fwName))
		g.Expect(fws[0].Status.MachineStatus).NotTo(BeNil())
		g.Expect(fws[0].Status.MachineStatus.MachineID).To(Equal(machineID))
		g.Expect(fws[0].Status.Phase).To(Equal(v2.FirewallPhaseRunning))
		g.Expect(meta.IsStatusConditionTrue(fws[0].Status.Conditions, v2.ConditionMonitorDeployed)).To(BeTrue())
		var mon v2.FirewallMonitor
		g.Expect(tc.Get(ctx, client.ObjectKey{Namespace: v2.FirewallShootNamespace, Name: fwName}, &mon)).To(Succeed())
		var d v2.FirewallDeployment
		g.Expect(tc.Get(ctx, deployKey, &d)).To(Succeed())
		g.Expect(d.Status.ReadyReplicas).To(Equal(1))
	}).Should(Succeed())
	polled := source.Sim.RequestCount(metal.OpFirewallFind) + source.Sim.RequestCount(metal.OpFirewallGet) +
		source.Sim.RequestCount(metal.OpMachineFind) + source.Sim.RequestCount(metal.OpMachineGet) + source.Sim.RequestCount(metal.OpFirewallList)
	g.Expect(polled).To(BeNumerically(">", 0), "the target polls metal-api")

	// Two running polls (2 s each in the test options) without a new set or a metal write.
	g.Consistently(func(g Gomega) {
		var sets v2.FirewallSetList
		g.Expect(tc.List(ctx, &sets, client.InNamespace(ns))).To(Succeed())
		g.Expect(sets.Items).To(HaveLen(1))
		g.Expect(sets.Items[0].Name).To(Equal(setName))
		g.Expect(writes(source.Sim)).To(BeEmpty())
	}, 5*time.Second).Should(Succeed())
	allocated := 0
	for _, m := range source.Sim.Machines() {
		if m.Allocation != nil {
			allocated++
		}
	}
	g.Expect(allocated).To(Equal(1), "no extra machine")
}

// newClusterctl returns the clusterctl library client. Its only deviation from the CLI: the
// source-built envtest kube-apiserver reports version v0.0.0-master (no version stamp), which
// clusterctl's minimum-version check refuses, so that one check is answered by the test.
func newClusterctl(g Gomega, ctx context.Context, configPath string) clusterctlclient.Client {
	cfg, err := clusterctlconfig.New(ctx, configPath)
	g.Expect(err).NotTo(HaveOccurred())
	cc, err := clusterctlclient.New(ctx, configPath,
		clusterctlclient.InjectConfig(cfg),
		clusterctlclient.InjectClusterClientFactory(func(in clusterctlclient.ClusterClientFactoryInput) (clusterctlcluster.Client, error) {
			kubeconfig := clusterctlcluster.Kubeconfig(in.Kubeconfig)
			return clusterctlcluster.New(kubeconfig, cfg,
				clusterctlcluster.InjectProxy(unstampedVersion{clusterctlcluster.NewProxy(kubeconfig)})), nil
		}))
	g.Expect(err).NotTo(HaveOccurred())
	return cc
}

// unstampedVersion is clusterctl's proxy without the Kubernetes version check (see newClusterctl).
type unstampedVersion struct{ clusterctlcluster.Proxy }

func (unstampedVersion) ValidateKubernetesVersion() error { return nil }

// installClusterAPI installs Cluster API's Cluster CRD from the module (cluster-api v1.14.2)
// with the label clusterctl discovers types by, as clusterctl init would.
func installClusterAPI(g Gomega, cfg *rest.Config) {
	dir, err := moduleDir("sigs.k8s.io/cluster-api")
	g.Expect(err).NotTo(HaveOccurred())
	raw, err := os.ReadFile(filepath.Join(dir, "core", "config", "crd", "bases", "cluster.x-k8s.io_clusters.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(utilyaml.Unmarshal(raw, crd)).To(Succeed())
	crd.Labels = map[string]string{"clusterctl.cluster.x-k8s.io": "", "cluster.x-k8s.io/provider": "cluster-api"}
	_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}})
	g.Expect(err).NotTo(HaveOccurred())
}

// createProvisionedCluster creates a Cluster whose infrastructure and control plane are up, so
// clusterctl agrees to move it.
func createProvisionedCluster(g Gomega, c client.Client, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(clusterGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	g.Expect(unstructured.SetNestedMap(u.Object, map[string]any{"host": "192.0.2.10", "port": int64(6443)}, "spec", "controlPlaneEndpoint")).To(Succeed())
	g.Expect(c.Create(context.Background(), u)).To(Succeed())
	g.Expect(unstructured.SetNestedField(u.Object, map[string]any{"infrastructureProvisioned": true, "controlPlaneInitialized": true}, "status", "initialization")).To(Succeed())
	g.Expect(unstructured.SetNestedSlice(u.Object, []any{map[string]any{
		"type": "ControlPlaneInitialized", "status": "True", "reason": "Initialized", "message": "", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	}}, "status", "conditions")).To(Succeed())
	g.Expect(c.Status().Update(context.Background(), u)).To(Succeed())
	return u
}

// clusterObjects are what CAPMS writes for seed 001's example: the agent config Secret (labelled
// for clusterctl move, since its name is not one of Cluster API's cluster secret names), the
// kubeconfig Secret Cluster API writes, and the FirewallDeployment owned by the Cluster.
func clusterObjects(g Gomega, ns, cluster string, owner *unstructured.Unstructured) []client.Object {
	ownerRef := metav1.OwnerReference{APIVersion: clusterGVK.GroupVersion().String(), Kind: clusterGVK.Kind, Name: owner.GetName(), UID: owner.GetUID()}
	config := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: cluster + "-firewall-controller-config", Namespace: ns,
			Labels: map[string]string{"clusterctl.cluster.x-k8s.io/move": "", "cluster.x-k8s.io/cluster-name": cluster}},
		StringData: map[string]string{"controllerConfig": "name: " + cluster + "-firewall\nsources: {static: {}}\ncontrollers: {firewall: {source: static}}\n"},
	}
	kubeconfig := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: cluster + "-kubeconfig", Namespace: ns, Labels: map[string]string{"cluster.x-k8s.io/cluster-name": cluster}},
		Type:       "cluster.x-k8s.io/secret",
		Data:       map[string][]byte{"value": []byte("apiVersion: v1\nkind: Config\n# workload " + cluster + "\n")},
	}
	deploy := &unstructured.Unstructured{}
	g.Expect(utilyaml.Unmarshal([]byte(fmt.Sprintf(deploymentManifest, cluster, ns, cluster, cluster, cluster, cluster, cluster)), &deploy.Object)).To(Succeed())
	deploy.SetOwnerReferences([]metav1.OwnerReference{ownerRef})
	return []client.Object{config, kubeconfig, deploy}
}

// deploymentManifest is the FirewallDeployment of docs/integrations.md (Cluster API section).
const deploymentManifest = `
apiVersion: firewall.metal-stack.io/v2
kind: FirewallDeployment
metadata:
  name: %s-firewall
  namespace: %s
  labels:
    cluster.x-k8s.io/cluster-name: %s
  annotations:
    firewall.metal-stack.io/no-controller-connection: "true"
spec:
  replicas: 1
  selector:
    cluster.x-k8s.io/cluster-name: %s
  template:
    metadata:
      labels:
        cluster.x-k8s.io/cluster-name: %s
    spec:
      size: ` + metalsim.DefaultSize + `
      image: ` + metalsim.DefaultImage + `
      partition: ` + metalsim.DefaultPartition + `
      project: ` + metalsim.DefaultProject + `
      networks: [` + metalsim.DefaultExternalNetwork + `, ` + metalsim.DefaultPrivateNetwork + `]
      userdataContents:
        - path: /etc/firewall-controller/config.yaml
          secretName: %s-firewall-controller-config
        - path: /etc/firewall-controller/workload.yaml
          secretName: %s-kubeconfig
`

func setPaused(g Gomega, c client.Client, key client.ObjectKey, paused bool) {
	g.Eventually(func() error {
		var d v2.FirewallDeployment
		if err := c.Get(context.Background(), key, &d); err != nil {
			return err
		}
		if paused {
			metav1.SetMetaDataAnnotation(&d.ObjectMeta, v2.PausedAnnotation, "true")
		} else {
			delete(d.Annotations, v2.PausedAnnotation)
		}
		return c.Update(context.Background(), &d)
	}).Should(Succeed())
}

func firewalls(g Gomega, c client.Client, ns string) []v2.Firewall {
	var list v2.FirewallList
	g.Expect(c.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	return list.Items
}

// writes returns the metal-api write operations recorded since the last reset.
func writes(sim *metalsim.Simulator) []string {
	var out []string
	for _, r := range sim.Requests() {
		if slices.Contains(metalWrites, r.Op) {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// writeKubeconfig writes a kubeconfig for an envtest API server (client certificate auth).
func writeKubeconfig(g Gomega, dir, name string, cfg *rest.Config) string {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	path := filepath.Join(dir, name+".kubeconfig")
	g.Expect(clientcmd.WriteToFile(*kc, path)).To(Succeed())
	return path
}

// moduleDir is the directory of a module of this repository's build list (go list -m).
func moduleDir(module string) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// By logs a step, so that a failure says where it happened.
func By(t *testing.T, step string) { t.Helper(); t.Log("STEP: " + step) }
