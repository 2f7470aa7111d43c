package manager

import (
	"context"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

func deployment(namespace, name string, replicas int, image string, annotations map[string]string) *v2.FirewallDeployment {
	return &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations},
		Spec: v2.FirewallDeploymentSpec{
			Strategy: v2.StrategyRollingUpdate,
			Replicas: replicas,
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: v2.FirewallSpec{
					Size:      metalsim.DefaultSize,
					Image:     image,
					Partition: metalsim.DefaultPartition,
					Project:   metalsim.DefaultProject,
					Networks:  []string{metalsim.DefaultExternalNetwork, metalsim.DefaultPrivateNetwork},
					Userdata:  `{"ignition":{"version":"3.4.0"}}`,
				},
			},
		},
	}
}

var noAgent = map[string]string{v2.NoControllerConnectionAnnotation: "true"}

// allocatedFor returns the simulator's allocated machines whose allocation name starts with
// one of the firewall names of the namespace.
func allocatedIn(namespace string) []metalsim.MachineSnapshot {
	var out []metalsim.MachineSnapshot
	for _, m := range sim.Machines() {
		if m.Allocation == nil {
			continue
		}
		if slices.Contains(m.Tags, v2.NamespaceTag+"="+namespace) {
			out = append(out, m)
		}
	}
	return out
}

func firewallsIn(g Gomega, namespace string) []v2.Firewall {
	var list v2.FirewallList
	g.Expect(k8sClient.List(ctx, &list, client.InNamespace(namespace))).To(Succeed())
	return list.Items
}

func setsIn(g Gomega, namespace string) []v2.FirewallSet {
	var list v2.FirewallSetList
	g.Expect(k8sClient.List(ctx, &list, client.InNamespace(namespace))).To(Succeed())
	return list.Items
}

func conditionTrue(conds []metav1.Condition, t string) bool {
	return meta.IsStatusConditionTrue(conds, t)
}

func getDeployment(g Gomega, d *v2.FirewallDeployment) *v2.FirewallDeployment {
	got := &v2.FirewallDeployment{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), got)).To(Succeed())
	return got
}

func nowTime() metav1.Time { return metav1.Now() }

// updateDeployment reads the deployment, applies mutate and writes it back, retrying on
// conflicts (the manager writes the deployment's finalizer and annotations too).
func updateDeployment(ctx context.Context, key client.ObjectKey, mutate func(*v2.FirewallDeployment)) {
	EventuallyWithOffset(1, func() error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			d := &v2.FirewallDeployment{}
			if err := k8sClient.Get(ctx, key, d); err != nil {
				return err
			}
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			mutate(d)
			return k8sClient.Update(ctx, d)
		})
	}).Should(Succeed())
}

// setImage changes the deployment's firewall image.
func setImage(d *v2.FirewallDeployment, image string) {
	updateDeployment(ctx, client.ObjectKeyFromObject(d), func(d *v2.FirewallDeployment) { d.Spec.Template.Spec.Image = image })
}

// timeline returns the simulator's milestones of the machines whose hostname starts with prefix.
func timeline(prefix string) []metalsim.TimelineEvent {
	var out []metalsim.TimelineEvent
	for _, e := range sim.Timeline() {
		if strings.HasPrefix(e.Hostname, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// firstEvent is the time of the first milestone of kind for hostname, or zero.
func firstEvent(events []metalsim.TimelineEvent, hostname string, kind metalsim.TimelineKind) time.Time {
	for _, e := range events {
		if e.Hostname == hostname && e.Kind == kind {
			return e.Time
		}
	}
	return time.Time{}
}

// countEvents counts the milestones of kind per hostname.
func countEvents(events []metalsim.TimelineEvent, kind metalsim.TimelineKind) map[string]int {
	out := map[string]int{}
	for _, e := range events {
		if e.Kind == kind {
			out[e.Hostname]++
		}
	}
	return out
}

// reportAgent writes an agent report to the firewall's status as a connected agent would:
// rules of the current generation applied now, distance configured.
func reportAgent(g Gomega, fw *v2.Firewall) {
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fw), fw)).To(Succeed())
	applied := true
	fw.Status.ControllerStatus = &v2.ControllerConnection{
		ActualVersion: "v2.0.0", Updated: nowTime(), SeedUpdated: nowTime(),
		ActualDistance: fw.Distance, ObservedGeneration: fw.Generation, RulesApplied: &applied,
	}
	g.Expect(k8sClient.Status().Update(ctx, fw)).To(Succeed())
}
