package userdata

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// The egress CIDRs of a shoot's firewalls (their external IPs and the Infrastructure's SNAT
// egress rule IPs) are published in the shoot's Infrastructure status, and the acl Extension is
// asked to reconcile, as the upstream manager does.
func TestGardenerEgressCIDRs(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	c := stack.Client
	installGardenerExtensionCRDs(g)

	const ns = "shoot--egress--cluster"
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	infra := gardenerObject("Infrastructure", ns, "cluster")
	g.Expect(unstructured.SetNestedSlice(infra.Object, []any{map[string]any{"networkID": "internet", "ips": []any{"198.51.100.1"}}},
		"spec", "providerConfig", "firewall", "egressRules")).To(Succeed())
	g.Expect(c.Create(ctx, infra)).To(Succeed())
	g.Expect(c.Create(ctx, gardenerObject("Extension", ns, "acl"))).To(Succeed())

	obj := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(gepmDeployment), &obj.Object)).To(Succeed())
	obj.SetNamespace(ns)
	obj.SetLabels(map[string]string{"gardener-shoot-namespace": ns})
	g.Expect(c.Create(ctx, obj)).To(Succeed())

	var externalIP string
	g.Eventually(func(g Gomega) {
		var fws v2.FirewallList
		g.Expect(c.List(ctx, &fws, client.InNamespace(ns))).To(Succeed())
		g.Expect(fws.Items).To(HaveLen(1))
		for _, n := range fws.Items[0].Status.FirewallNetworks {
			if n.NetworkType != nil && *n.NetworkType == "external" && len(n.IPs) > 0 {
				externalIP = n.IPs[0]
			}
		}
		g.Expect(externalIP).NotTo(BeEmpty())
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		got := gardenerObject("Infrastructure", ns, "cluster")
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(got), got)).To(Succeed())
		cidrs, _, _ := unstructured.NestedStringSlice(got.Object, "status", "egressCIDRs")
		g.Expect(cidrs).To(ConsistOf(externalIP+"/32", "198.51.100.1/32"))
		acl := gardenerObject("Extension", ns, "acl")
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(acl), acl)).To(Succeed())
		g.Expect(acl.GetAnnotations()).To(HaveKeyWithValue("gardener.cloud/operation", "reconcile"))
	}).Should(Succeed())
}

func gardenerObject(kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("extensions.gardener.cloud/v1alpha1")
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	if err := unstructured.SetNestedField(u.Object, map[string]any{"type": "metal"}, "spec"); err != nil {
		panic(err)
	}
	return u
}

// installGardenerExtensionCRDs installs schemaless stand-ins for Gardener's Infrastructure and
// Extension CRDs (only the fields the manager reads and writes matter).
func installGardenerExtensionCRDs(g Gomega) {
	preserve := true
	var crds []*apiextensionsv1.CustomResourceDefinition
	for kind, plural := range map[string]string{"Infrastructure": "infrastructures", "Extension": "extensions"} {
		crds = append(crds, &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: plural + ".extensions.gardener.cloud"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "extensions.gardener.cloud",
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: plural[:len(plural)-1]},
				Scope: apiextensionsv1.NamespaceScoped,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1alpha1", Served: true, Storage: true,
					Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: &preserve,
					}},
				}},
			},
		})
	}
	_, err := envtest.InstallCRDs(stack.Config, envtest.CRDInstallOptions{CRDs: crds})
	g.Expect(err).NotTo(HaveOccurred())
}
