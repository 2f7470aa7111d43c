package manager

import (
	"slices"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
