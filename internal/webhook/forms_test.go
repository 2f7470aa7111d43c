package webhook_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/userdata"
)

// The three userdataContents forms go through the real API server with strict field validation
// and the webhooks, come back exactly as written, and render the same userdata.
func TestUserdataContentsFormsRoundTrip(t *testing.T) {
	g := NewWithT(t)
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "forms-config", Namespace: "default"}, Data: map[string][]byte{"controllerConfig": []byte("sources: {}\n")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "forms-kubeconfig", Namespace: "default"}, Data: map[string][]byte{"value": []byte("apiVersion: v1\nkind: Config\n")}},
	} {
		g.Expect(k8sClient.Create(ctx, s)).To(Succeed())
	}
	g.Expect(k8sClient.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "forms-settings", Namespace: "default"},
		Data: map[string]string{"value": "x: 1\n"}})).To(Succeed())

	forms := map[string]string{
		"secretRef": `spec: {template: {spec: {userdataContents: [
  {path: /etc/firewall-controller/config.yaml, secretRef: {name: forms-config, key: controllerConfig}},
  {path: /etc/firewall-controller/workload.yaml, secretRef: {name: forms-kubeconfig}},
  {path: /etc/firewall-controller/settings.yaml, configMapRef: {name: forms-settings}},
  {path: /etc/firewall-controller/inline.yaml, content: "a: b\n"}]}}}`,
		"secretName": `spec: {template: {spec: {userdataContents: [
  {path: /etc/firewall-controller/config.yaml, secretName: forms-config},
  {path: /etc/firewall-controller/workload.yaml, secretName: forms-kubeconfig},
  {path: /etc/firewall-controller/settings.yaml, configMapRef: {name: forms-settings, key: value}},
  {path: /etc/firewall-controller/inline.yaml, content: "a: b\n"}]}}}`,
		"contentFrom": `spec: {template: {spec: {userdataContents: [
  {path: /etc/firewall-controller/config.yaml, contentFrom: {secretKeyRef: {name: forms-config, key: controllerConfig}}},
  {path: /etc/firewall-controller/workload.yaml, contentFrom: {secretKeyRef: {name: forms-kubeconfig, key: value}}},
  {path: /etc/firewall-controller/settings.yaml, contentFrom: {configMapKeyRef: {name: forms-settings}}},
  {path: /etc/firewall-controller/inline.yaml, content: "a: b\n"}]}}}`,
	}
	var first *userdata.Result
	for _, name := range []string{"secretRef", "secretName", "contentFrom"} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			sent := mutated(g, validDeployment, forms[name], "forms-"+slug(name))
			g.Expect(k8sClient.Create(ctx, sent, client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())

			stored := &unstructured.Unstructured{}
			stored.SetGroupVersionKind(sent.GroupVersionKind())
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(sent), stored)).To(Succeed())
			want, _, _ := unstructured.NestedSlice(sent.Object, "spec", "template", "spec", "userdataContents")
			got, _, _ := unstructured.NestedSlice(stored.Object, "spec", "template", "spec", "userdataContents")
			g.Expect(got).To(Equal(want), "stored exactly as written")

			// An update as a client built on the same form sends it (CAPMS' CreateOrUpdate) passes strict validation too.
			stored.SetLabels(map[string]string{"touched": "true"})
			g.Expect(k8sClient.Update(ctx, stored, client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())

			var typed v2.FirewallDeployment
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(sent), &typed)).To(Succeed())
			res, err := userdata.New(k8sClient).Render(ctx, "default", &typed.Spec.Template.Spec)
			g.Expect(err).NotTo(HaveOccurred())
			if first == nil {
				first = res
				return
			}
			g.Expect(res.Userdata).To(Equal(first.Userdata), "renders as the secretRef form does")
			g.Expect(res.Hash).To(Equal(first.Hash))
		})
	}
}

// Mixing forms in one entry, or sources in one contentFrom, is refused by CEL with a message
// naming every accepted field; a second generated kubeconfig is refused by the webhook whichever
// form asks for it.
func TestUserdataContentsFormsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, patch string
		want        []string
	}{
		{"secretName and secretRef", `spec: {template: {spec: {userdataContents: [{path: /etc/a, secretName: s, secretRef: {name: s}}]}}}`,
			[]string{"spec.template.spec.userdataContents[0]", "exactly one of content, secretRef, configMapRef, secretName and contentFrom"}},
		{"no source", `spec: {template: {spec: {userdataContents: [{path: /etc/a}]}}}`,
			[]string{"exactly one of content, secretRef, configMapRef, secretName and contentFrom"}},
		{"two sources in contentFrom", `spec: {template: {spec: {userdataContents: [{path: /etc/a, contentFrom: {secretKeyRef: {name: s}, configMapKeyRef: {name: c}}}]}}}`,
			[]string{"spec.template.spec.userdataContents[0].contentFrom", "exactly one of secretKeyRef, configMapKeyRef and firewallControllerKubeconfigSecret"}},
		{"bad secretName", `spec: {template: {spec: {userdataContents: [{path: /etc/a, secretName: "Not_A_Name"}]}}}`,
			[]string{"spec.template.spec.userdataContents[0].secretName"}},
		{"two generated kubeconfigs", `spec: {template: {spec: {userdataContents: [
  {path: /etc/a, secretRef: {name: a, generateFirewallControllerKubeconfig: true}},
  {path: /etc/b, contentFrom: {firewallControllerKubeconfigSecret: {name: b}}}]}}}`,
			[]string{"spec.template.spec.userdataContents[1].contentFrom.firewallControllerKubeconfigSecret", "only one file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := k8sClient.Create(ctx, mutated(g, validDeployment, tc.patch, "refused-"+slug(tc.name)), client.FieldValidation(metav1.FieldValidationStrict))
			g.Expect(err).To(HaveOccurred())
			for _, w := range tc.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}
}
