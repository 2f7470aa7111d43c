package helm

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/palisade-fw/palisade/internal/testenv"
)

// TestInstallAndUpgrade installs the chart into a bare envtest API server (no CRDs preinstalled:
// the chart brings them), upgrades it with every optional feature switched on and uninstalls it.
// envtest runs no controllers, so pods never start; what counts is that the API server accepts
// every rendered object and the release reaches "deployed".
func TestInstallAndUpgrade(t *testing.T) {
	helmBinary(t) // skips before paying for an API server when helm cannot be built
	if err := testenv.EnsureAssets(); err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{
		// Stand-ins for the cert-manager and Prometheus operator CRDs the upgrade uses.
		CRDs: []*apiextensionsv1.CustomResourceDefinition{
			opaqueCRD("cert-manager.io", "Issuer", "issuers"),
			opaqueCRD("cert-manager.io", "Certificate", "certificates"),
			opaqueCRD("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
		},
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stopping envtest: %v", err)
		}
	})
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, apiextensionsv1.AddToScheme, admissionregistrationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	kubeconfig := writeKubeconfig(t, env)

	// The Secret the chart expects; its contents are never rendered into the release.
	// Pod Security "restricted" warns about non-compliant pod templates of Deployments; helm
	// prints such warnings on stderr, and the test fails on them.
	mustCreate(ctx, t, k8s, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}})
	mustCreate(ctx, t, k8s, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "metal-api", Namespace: releaseNamespace},
		StringData: map[string]string{"url": "https://metal-api.example/metal", "hmac": "not-a-real-key"},
	})

	helmArgs := func(verb string, valuesFiles ...string) []string {
		args := []string{verb, releaseName, chartDir(t), "--namespace", releaseNamespace, "--kubeconfig", kubeconfig, "--wait=false", "--timeout", "2m"}
		for _, f := range valuesFiles {
			args = append(args, "--values", filepath.Join("testdata", f))
		}
		return args
	}

	t.Run("install", func(t *testing.T) {
		out, errOut, err := runHelm(t, helmArgs("install")...)
		if err != nil {
			t.Fatalf("helm install: %v\n%s%s", err, out, errOut)
		}
		assertNoPodSecurityWarning(t, errOut)
		assertRelease(t, kubeconfig, 1)
		assertManifestApplied(ctx, t, k8s, kubeconfig)
		for _, crd := range []string{"firewalldeployments.firewall.metal-stack.io", "firewallsets.firewall.metal-stack.io", "firewalls.firewall.metal-stack.io", "firewallmonitors.firewall.metal-stack.io", "clusterwidenetworkpolicies.metal-stack.io"} {
			var got apiextensionsv1.CustomResourceDefinition
			if err := k8s.Get(ctx, client.ObjectKey{Name: crd}, &got); err != nil {
				t.Errorf("CRD %s not installed by the chart: %v", crd, err)
			}
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		// In self-signed mode the manager patches caBundle; an upgrade must not wipe it, or the
		// API server could not call the webhooks until the manager's next check.
		caBundle := []byte("-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n")
		var validating admissionregistrationv1.ValidatingWebhookConfiguration
		if err := k8s.Get(ctx, client.ObjectKey{Name: "palisade-validating-webhook-configuration"}, &validating); err != nil {
			t.Fatal(err)
		}
		for i := range validating.Webhooks {
			validating.Webhooks[i].ClientConfig.CABundle = caBundle
		}
		if err := k8s.Update(ctx, &validating); err != nil {
			t.Fatal(err)
		}

		out, errOut, err := runHelm(t, helmArgs("upgrade", "upgrade.yaml")...)
		if err != nil {
			t.Fatalf("helm upgrade: %v\n%s%s", err, out, errOut)
		}
		assertNoPodSecurityWarning(t, errOut)
		assertRelease(t, kubeconfig, 2)
		if err := k8s.Get(ctx, client.ObjectKey{Name: "palisade-validating-webhook-configuration"}, &validating); err != nil {
			t.Fatal(err)
		}
		for _, w := range validating.Webhooks {
			if string(w.ClientConfig.CABundle) != string(caBundle) {
				t.Errorf("helm upgrade changed caBundle of %s", w.Name)
			}
		}
		assertManifestApplied(ctx, t, k8s, kubeconfig)
		var d appsv1.Deployment
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: releaseName}, &d); err != nil {
			t.Fatal(err)
		}
		if got := ptr.Deref(d.Spec.Replicas, 0); got != 3 {
			t.Errorf("replicas after upgrade %d, want 3", got)
		}
		for _, kind := range []string{"Certificate", "Issuer", "ServiceMonitor"} {
			list := &unstructured.UnstructuredList{}
			group := map[string]string{"Certificate": "cert-manager.io", "Issuer": "cert-manager.io", "ServiceMonitor": "monitoring.coreos.com"}[kind]
			list.SetAPIVersion(group + "/v1")
			list.SetKind(kind + "List")
			if err := k8s.List(ctx, list, client.InNamespace(releaseNamespace)); err != nil || len(list.Items) != 1 {
				t.Errorf("%s after upgrade: %d objects, err %v", kind, len(list.Items), err)
			}
		}
	})

	t.Run("uninstall", func(t *testing.T) {
		manifest := releaseManifest(t, kubeconfig)
		if out, errOut, err := runHelm(t, "uninstall", releaseName, "--namespace", releaseNamespace, "--kubeconfig", kubeconfig, "--wait=false"); err != nil {
			t.Fatalf("helm uninstall: %v\n%s%s", err, out, errOut)
		}
		for _, o := range manifest {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o.DeepCopy()); !apierrors.IsNotFound(err) {
				t.Errorf("%s %s still there after uninstall (err %v)", o.GetKind(), o.GetName(), err)
			}
		}
		// Helm keeps CRDs on uninstall so that firewalls (and their machines) are not deleted.
		var crd apiextensionsv1.CustomResourceDefinition
		if err := k8s.Get(ctx, client.ObjectKey{Name: "firewalls.firewall.metal-stack.io"}, &crd); err != nil {
			t.Errorf("CRD removed by uninstall: %v", err)
		}
	})
}

func assertNoPodSecurityWarning(t *testing.T, helmStderr string) {
	t.Helper()
	if strings.Contains(helmStderr, "PodSecurity") {
		t.Errorf("the manager pods violate Pod Security restricted:\n%s", helmStderr)
	}
}

func mustCreate(ctx context.Context, t *testing.T, k8s client.Client, obj client.Object) {
	t.Helper()
	if err := k8s.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
}

// writeKubeconfig adds a cluster-admin user to envtest and writes its kubeconfig for helm.
func writeKubeconfig(t *testing.T, env *envtest.Environment) string {
	t.Helper()
	user, err := env.AddUser(envtest.User{Name: "helm-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func assertRelease(t *testing.T, kubeconfig string, revision int) {
	t.Helper()
	out, errOut, err := runHelm(t, "status", releaseName, "--namespace", releaseNamespace, "--kubeconfig", kubeconfig, "--output", "json")
	if err != nil {
		t.Fatalf("helm status: %v\n%s", err, errOut)
	}
	var status struct {
		Version int `json:"version"`
		Info    struct {
			Status string `json:"status"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &status); err != nil {
		t.Fatal(err)
	}
	if status.Info.Status != "deployed" || status.Version != revision {
		t.Fatalf("release is %q at revision %d, want deployed at %d", status.Info.Status, status.Version, revision)
	}
}

func releaseManifest(t *testing.T, kubeconfig string) []*unstructured.Unstructured {
	t.Helper()
	out, errOut, err := runHelm(t, "get", "manifest", releaseName, "--namespace", releaseNamespace, "--kubeconfig", kubeconfig)
	if err != nil {
		t.Fatalf("helm get manifest: %v\n%s", err, errOut)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatal("release has an empty manifest")
	}
	return objs
}

// assertManifestApplied checks that every object of the release exists in the API server.
func assertManifestApplied(ctx context.Context, t *testing.T, k8s client.Client, kubeconfig string) {
	t.Helper()
	for _, want := range releaseManifest(t, kubeconfig) {
		if want.GetNamespace() == "" && isNamespaced(t, k8s, want) {
			want.SetNamespace(releaseNamespace)
		}
		got := want.DeepCopy()
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
			t.Errorf("%s %s from the release is not in the API server: %v", want.GetKind(), want.GetName(), err)
		}
	}
}

func isNamespaced(t *testing.T, k8s client.Client, o *unstructured.Unstructured) bool {
	t.Helper()
	namespaced, err := k8s.IsObjectNamespaced(o)
	if err != nil {
		t.Fatalf("%s: %v", o.GetKind(), err)
	}
	return namespaced
}

// opaqueCRD is a schemaless CRD standing in for a third-party API the chart can use.
func opaqueCRD(group, kind, plural string) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind)},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
}
