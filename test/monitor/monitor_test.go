// Package monitor checks the FirewallMonitor loop across two real API servers: the manager in
// the seed writes a monitor per firewall into the workload cluster named by a kubeconfig Secret,
// reads the agent's report and roll requests back from it without polling, and removes it with
// the firewall. A second part checks single-cluster mode.
package monitor

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
)

var (
	seed         *harness.Stack
	workloadCli  client.Client
	workloadKube []byte
	ctx          = context.Background()
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	logger := harness.TestLogger()
	workload, err := harness.StartWorkload()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = workload.Stop() }()
	workloadCli, workloadKube = workload.Client, workload.Kubeconfig

	seed, err = harness.Start(harness.Options{Logger: logger, Manager: func(o *manager.Options) {
		o.Firewall.ConnectedThreshold = time.Hour // reports in this test are written once
		o.Firewall.SeedConnectedThreshold = time.Hour
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = seed.Stop() }()
	return m.Run()
}

func TestMonitorInTheWorkloadCluster(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	g.SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	ns := newNamespace(g, "shoot--proj--monitor")

	deploy := deployment(ns, "shoot-firewall")
	deploy.Annotations = map[string]string{v2.WorkloadKubeconfigAnnotation: "workload-kubeconfig/kubeconfig"}
	g.Expect(seed.Client.Create(ctx, deploy)).To(Succeed())

	t.Log("the kubeconfig Secret is missing: the firewall is created anyway and says why it has no monitor")
	fw := onlyFirewall(g, ns)
	g.Eventually(func(g Gomega) {
		cond := condition(g, fw, v2.ConditionMonitorDeployed)
		g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(cond.Reason).To(Equal("KubeconfigMissing"))
		g.Expect(cond.Message).To(ContainSubstring("workload-kubeconfig"))
	}).Should(Succeed())

	t.Log("the Secret appears: the monitor is written into the workload cluster")
	g.Expect(seed.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "workload-kubeconfig", Namespace: ns},
		Data:       map[string][]byte{"kubeconfig": workloadKube},
	})).To(Succeed())
	mon := &v2.FirewallMonitor{}
	g.Eventually(func(g Gomega) {
		g.Expect(workloadCli.Get(ctx, client.ObjectKey{Namespace: "firewall", Name: fw.Name}, mon)).To(Succeed())
		g.Expect(mon.Labels).To(HaveKeyWithValue(v2.MonitorSeedNamespaceLabel, ns))
		g.Expect(mon.Image).To(Equal(metalsim.DefaultImage))
		g.Expect(mon.Networks).To(Equal(deploy.Spec.Template.Spec.Networks))
		g.Expect(mon.MachineStatus).NotTo(BeNil())
		g.Expect(mon.MachineStatus.MachineID).NotTo(BeEmpty())
		g.Expect(meta.FindStatusCondition(mon.Conditions, v2.ConditionCreated)).NotTo(BeNil())
		g.Expect(condition(g, fw, v2.ConditionMonitorDeployed).Status).To(Equal(metav1.ConditionTrue))
	}).Should(Succeed())
	g.Expect(seed.Client.Get(ctx, client.ObjectKeyFromObject(fw), fw)).To(Succeed())
	g.Expect(fw.Status.ControllerStatus).To(BeNil(), "no agent has reported yet")
	g.Expect(condition(g, fw, v2.ConditionConnected).Status).To(Equal(metav1.ConditionFalse))

	t.Log("an agent that reports only into the workload cluster makes the firewall Connected and Ready")
	g.Eventually(func() error {
		if err := workloadCli.Get(ctx, client.ObjectKeyFromObject(mon), mon); err != nil {
			return err
		}
		applied := true
		mon.ControllerStatus = &v2.ControllerStatus{
			ControllerVersion: "v-monitor-only", Updated: metav1.Now(), SeedUpdated: metav1.Now(),
			Distance: fw.Distance, DistanceSupported: true, ObservedGeneration: fw.Generation, RulesApplied: &applied,
			Conditions: []metav1.Condition{{Type: "RulesetInSync", Status: metav1.ConditionFalse, Reason: "Drifted",
				Message: "chain forward: 0 rules, expected 17; repairing", LastTransitionTime: metav1.Now()}},
		}
		return workloadCli.Update(ctx, mon)
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		got := &v2.Firewall{}
		g.Expect(seed.Client.Get(ctx, client.ObjectKeyFromObject(fw), got)).To(Succeed())
		g.Expect(got.Status.ControllerStatus).NotTo(BeNil())
		g.Expect(got.Status.ControllerStatus.ActualVersion).To(Equal("v-monitor-only"))
		g.Expect(meta.IsStatusConditionFalse(got.Status.ControllerStatus.Conditions, "RulesetInSync")).To(BeTrue(), "the agent's drift condition is adopted")
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v2.ConditionConnected)).To(BeTrue())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v2.ConditionReady)).To(BeTrue())
	}).Should(Succeed())

	t.Log("the manager's writes leave the agent's report in the monitor alone")
	g.Eventually(func(g Gomega) {
		g.Expect(workloadCli.Get(ctx, client.ObjectKeyFromObject(mon), mon)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(mon.Conditions, v2.ConditionConnected)).To(BeTrue())
		g.Expect(mon.ControllerStatus).NotTo(BeNil())
		g.Expect(mon.ControllerStatus.ControllerVersion).To(Equal("v-monitor-only"))
	}).Should(Succeed())

	t.Log("a roll requested on the monitor rolls the set and the annotation is consumed")
	firstSet := fw.OwnerReferences[0].Name
	g.Eventually(func() error {
		if err := workloadCli.Get(ctx, client.ObjectKeyFromObject(mon), mon); err != nil {
			return err
		}
		metav1.SetMetaDataAnnotation(&mon.ObjectMeta, v2.RollSetAnnotation, "true")
		return workloadCli.Update(ctx, mon)
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		var sets v2.FirewallSetList
		g.Expect(seed.Client.List(ctx, &sets, client.InNamespace(ns))).To(Succeed())
		var names []string
		for _, s := range sets.Items {
			names = append(names, s.Name)
		}
		g.Expect(names).To(HaveLen(2))
		g.Expect(names).To(ContainElement(firstSet))
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(workloadCli.Get(ctx, client.ObjectKeyFromObject(mon), mon)).To(Succeed())
		g.Expect(mon.Annotations).NotTo(HaveKey(v2.RollSetAnnotation))
	}).Should(Succeed())

	t.Log("deleting the deployment deletes every monitor it had")
	g.Expect(seed.Client.Delete(ctx, deploy)).To(Succeed())
	g.Eventually(func(g Gomega) {
		var list v2.FirewallMonitorList
		g.Expect(workloadCli.List(ctx, &list, client.InNamespace("firewall"), client.MatchingLabels{v2.MonitorSeedNamespaceLabel: ns})).To(Succeed())
		var fws v2.FirewallList
		g.Expect(seed.Client.List(ctx, &fws, client.InNamespace(ns))).To(Succeed())
		var left []string
		for _, fw := range fws.Items {
			var conds []string
			for _, c := range fw.Status.Conditions {
				conds = append(conds, c.Type+"="+string(c.Status)+"/"+c.Reason+": "+c.Message)
			}
			left = append(left, fmt.Sprintf("%s deleting=%v finalizers=%v phase=%s conditions=%v", fw.Name, fw.DeletionTimestamp != nil, fw.Finalizers, fw.Status.Phase, conds))
		}
		g.Expect(list.Items).To(BeEmpty(), "firewalls left in the seed: %v", left)
	}).Should(Succeed())
}

// Without a kubeconfig the manager's own cluster is the workload cluster (Cluster API after
// the move, where management and workload cluster are one).
func TestSingleClusterMode(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	ns := newNamespace(g, "single")
	deploy := deployment(ns, "fw")
	g.Expect(seed.Client.Create(ctx, deploy)).To(Succeed())
	fw := onlyFirewall(g, ns)
	g.Eventually(func(g Gomega) {
		mon := &v2.FirewallMonitor{}
		g.Expect(seed.Client.Get(ctx, client.ObjectKey{Namespace: "firewall", Name: fw.Name}, mon)).To(Succeed())
		g.Expect(mon.Labels).To(HaveKeyWithValue(v2.MonitorSeedNamespaceLabel, ns))
	}).Should(Succeed())
	g.Expect(seed.Client.Delete(ctx, fw)).To(Succeed())
	g.Eventually(func() bool {
		err := seed.Client.Get(ctx, client.ObjectKey{Namespace: "firewall", Name: fw.Name}, &v2.FirewallMonitor{})
		return apierrors.IsNotFound(err)
	}).Should(BeTrue())
}

func deployment(namespace, name string) *v2.FirewallDeployment {
	return &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v2.FirewallDeploymentSpec{
			Strategy: v2.StrategyRollingUpdate,
			Replicas: 1,
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: v2.FirewallSpec{
					Size: metalsim.DefaultSize, Image: metalsim.DefaultImage, Partition: metalsim.DefaultPartition,
					Project:  metalsim.DefaultProject,
					Networks: []string{metalsim.DefaultExternalNetwork, metalsim.DefaultPrivateNetwork},
					Userdata: `{"ignition":{"version":"3.4.0"}}`,
				},
			},
		},
	}
}

func newNamespace(g Gomega, prefix string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	g.Expect(seed.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func onlyFirewall(g Gomega, namespace string) *v2.Firewall {
	var list v2.FirewallList
	g.Eventually(func(g Gomega) {
		g.Expect(seed.Client.List(ctx, &list, client.InNamespace(namespace))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1))
	}).Should(Succeed())
	return &list.Items[0]
}

func condition(g Gomega, fw *v2.Firewall, condType string) *metav1.Condition {
	got := &v2.Firewall{}
	g.Expect(seed.Client.Get(ctx, client.ObjectKeyFromObject(fw), got)).To(Succeed())
	cond := meta.FindStatusCondition(got.Status.Conditions, condType)
	g.Expect(cond).NotTo(BeNil(), condType)
	return cond
}
