package monitor

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

const olderImage = "firewall-ubuntu-3.0.20240201"

// In the maintenance window a deployment with autoUpdate.machineImage moves to the newest
// image of its OS minor version; without autoUpdate the window changes nothing. Either way the
// maintain annotation is consumed, so the next window triggers again.
func TestMaintenanceAutoUpdate(t *testing.T) {
	for _, autoUpdate := range []bool{true, false} {
		t.Run(map[bool]string{true: "autoUpdate", false: "no autoUpdate"}[autoUpdate], func(t *testing.T) {
			g := NewWithT(t)
			g.SetDefaultEventuallyTimeout(60 * time.Second)
			ns := newNamespace(g, "maintain")
			deploy := deployment(ns, "fw")
			deploy.Annotations = map[string]string{v2.NoControllerConnectionAnnotation: "true"}
			deploy.Spec.Template.Spec.Image = olderImage
			deploy.Spec.AutoUpdate.MachineImage = autoUpdate
			g.Expect(seed.Client.Create(ctx, deploy)).To(Succeed())
			g.Eventually(func(g Gomega) {
				g.Expect(get(g, deploy).Status.ReadyReplicas).To(Equal(1))
			}).Should(Succeed())

			g.Eventually(func() error {
				d := &v2.FirewallDeployment{}
				if err := seed.Client.Get(ctx, client.ObjectKeyFromObject(deploy), d); err != nil {
					return err
				}
				metav1.SetMetaDataAnnotation(&d.ObjectMeta, v2.MaintenanceAnnotation, "true")
				return seed.Client.Update(ctx, d)
			}).Should(Succeed())
			g.Eventually(func(g Gomega) {
				g.Expect(get(g, deploy).Annotations).NotTo(HaveKey(v2.MaintenanceAnnotation))
			}).Should(Succeed())

			if !autoUpdate {
				g.Consistently(func(g Gomega) {
					got := get(g, deploy)
					g.Expect(got.Spec.Template.Spec.Image).To(Equal(olderImage))
					var sets v2.FirewallSetList
					g.Expect(seed.Client.List(ctx, &sets, client.InNamespace(ns))).To(Succeed())
					g.Expect(sets.Items).To(HaveLen(1))
				}, 2*time.Second).Should(Succeed())
				return
			}
			g.Expect(get(g, deploy).Spec.Template.Spec.Image).To(Equal(metalsim.DefaultImage), "rewritten to the newest patch")
			g.Eventually(func(g Gomega) {
				var list v2.FirewallList
				g.Expect(seed.Client.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
				g.Expect(list.Items).To(HaveLen(1))
				g.Expect(list.Items[0].Status.MachineStatus).NotTo(BeNil())
				g.Expect(list.Items[0].Status.MachineStatus.ImageID).To(Equal(metalsim.DefaultImage))
				g.Expect(get(g, deploy).Status.ReadyReplicas).To(Equal(1))
			}).Should(Succeed())
		})
	}
}

func get(g Gomega, d *v2.FirewallDeployment) *v2.FirewallDeployment {
	got := &v2.FirewallDeployment{}
	g.Expect(seed.Client.Get(ctx, client.ObjectKeyFromObject(d), got)).To(Succeed())
	return got
}
