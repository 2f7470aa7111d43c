// Package scoping checks what the manager watches: a namespace that starts matching
// --namespace-selector is picked up at once (the Namespace watch), and the seed's unrelated
// Secrets cost the manager almost no memory (BenchmarkUnrelatedSecrets, docs/benchmarks.md).
package scoping

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
)

var (
	stack *harness.Stack
	ctx   = context.Background()
)

const selectorLabel = "palisade.metal-stack.io/enabled"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	stack, err = harness.Start(harness.Options{Logger: harness.TestLogger(), Manager: func(o *manager.Options) {
		o.NamespaceSelector = labels.SelectorFromSet(labels.Set{selectorLabel: "true"})
		o.Monitors.Disabled = true
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = stack.Stop() }()
	return m.Run()
}

func deployment(namespace string) *v2.FirewallDeployment {
	return &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: namespace},
		Spec: v2.FirewallDeploymentSpec{
			Strategy: v2.StrategyRollingUpdate, Replicas: 1,
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "edge"}},
				Spec: v2.FirewallSpec{
					Size: metalsim.DefaultSize, Image: metalsim.DefaultImage, Partition: metalsim.DefaultPartition,
					Project: metalsim.DefaultProject, Networks: []string{metalsim.DefaultExternalNetwork, metalsim.DefaultPrivateNetwork},
				},
			},
		},
	}
}

// A deployment in a namespace outside the selector is left alone; labelling the namespace
// reconciles it without any change to the deployment (nothing else would: the resync is hours).
func TestNamespaceThatStartsMatchingIsReconciled(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	g.SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	c := stack.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "late-"}}
	g.Expect(c.Create(ctx, ns)).To(Succeed())
	before := reconciles(g, "firewalldeployment")
	deploy := deployment(ns.Name)
	g.Expect(c.Create(ctx, deploy)).To(Succeed())

	// The manager (in this process) reconciled the deployment and filtered it out: no status.
	g.Eventually(func() float64 { return reconciles(g, "firewalldeployment") }).Should(BeNumerically(">", before))
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(deploy), deploy)).To(Succeed())
	g.Expect(deploy.Status.ObservedGeneration).To(BeZero())

	g.Eventually(func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(ns), ns); err != nil {
			return err
		}
		metav1.SetMetaDataLabel(&ns.ObjectMeta, selectorLabel, "true")
		return c.Update(ctx, ns)
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		var sets v2.FirewallSetList
		g.Expect(c.List(ctx, &sets, client.InNamespace(ns.Name))).To(Succeed())
		g.Expect(sets.Items).To(HaveLen(1))
	}).Should(Succeed(), "the namespace's deployment is reconciled once the namespace matches")
}

// reconciles is controller-runtime's count of finished reconciles of a controller.
func reconciles(g Gomega, controller string) float64 {
	families, err := crmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}
