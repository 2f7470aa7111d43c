package webhook_test

import (
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// While the manager (and with it the webhook server) is down, the webhooks, all failurePolicy
// Fail, must not block recovery: removing finalizers, status updates, labels, Cluster API's pause
// annotation and shallow deletes pass. Changes the webhooks check (spec, validated annotations)
// are still refused, which shows the webhooks are really unreachable.
func TestWebhooksDoNotBlockRecoveryWhileDown(t *testing.T) {
	g := NewWithT(t)
	const finalizer = "example.com/keep"
	var objs []*unstructured.Unstructured
	for i, base := range []string{validFirewall, validSet, validDeployment, validPolicy} {
		u := mutated(g, base, `{}`, "recovery-"+string(rune('a'+i)))
		u.SetFinalizers([]string{finalizer})
		g.Expect(k8sClient.Create(ctx, u)).To(Succeed())
		objs = append(objs, u)
	}

	webhooks.stop()
	t.Cleanup(func() { NewWithT(t).Expect(webhooks.start()).To(Succeed()) })

	for _, u := range objs {
		kind := u.GetKind()
		key := client.ObjectKeyFromObject(u)
		fresh := func() *unstructured.Unstructured {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(u.GroupVersionKind())
			g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
			return got
		}

		obj := fresh()
		spec := obj.Object["spec"].(map[string]any)
		switch kind {
		case "ClusterwideNetworkPolicy":
			spec["description"] = "changed while the webhooks are down"
		case "Firewall":
			spec["interval"] = "20s"
		default:
			spec["replicas"] = int64(0)
		}
		err := k8sClient.Update(ctx, obj)
		g.Expect(err).To(HaveOccurred(), "%s: a spec change must reach the (unreachable) webhook", kind)
		g.Expect(err.Error()).To(ContainSubstring("failed calling webhook"), kind)

		if kind != "ClusterwideNetworkPolicy" {
			obj = fresh()
			obj.SetAnnotations(map[string]string{"firewall.metal-stack.io/paused": "true"})
			g.Expect(k8sClient.Update(ctx, obj)).NotTo(Succeed(), "%s: a validated annotation reaches the webhook", kind)
		}

		obj = fresh()
		obj.SetLabels(map[string]string{"migrated": "true"})
		obj.SetAnnotations(map[string]string{"cluster.x-k8s.io/paused": ""})
		g.Expect(k8sClient.Update(ctx, obj)).To(Succeed(), "%s: labels and Cluster API's pause annotation", kind)

		if kind != "ClusterwideNetworkPolicy" {
			obj = fresh()
			if kind == "Firewall" {
				g.Expect(unstructured.SetNestedField(obj.Object, "Creating", "status", "phase")).To(Succeed())
			} else {
				g.Expect(unstructured.SetNestedField(obj.Object, int64(0), "status", "readyReplicas")).To(Succeed())
			}
			g.Expect(k8sClient.Status().Update(ctx, obj)).To(Succeed(), "%s: a status update", kind)
		}

		// A shallow delete as Gardener's migration does it: delete, then drop the finalizers.
		g.Expect(k8sClient.Delete(ctx, fresh(), client.PropagationPolicy("Orphan"))).To(Succeed(), kind)
		obj = fresh()
		obj.SetFinalizers(nil)
		g.Expect(k8sClient.Update(ctx, obj)).To(Succeed(), "%s: removing the finalizers", kind)
		g.Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, key, &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": u.GetAPIVersion(), "kind": kind}}))
		}).Should(BeTrue(), "%s is gone", kind)
	}
}
