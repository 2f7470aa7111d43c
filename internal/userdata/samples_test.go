package userdata

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	agentconfig "github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/userdata/userdatatest"
)

// The seed's three agent config shapes render into Ignition with the files the agent needs,
// and the rendered agent config is one the agent accepts, naming only files that exist.
func TestSamplesRender(t *testing.T) {
	const configPath = "/etc/firewall-controller/config.yaml"
	type shape struct {
		files   map[string]int // path -> mode
		extra   func(ns string) []client.Object
		sources []string
	}
	shapes := map[string]shape{
		"gardener.yaml": {
			files: map[string]int{configPath: 0o644, "/etc/firewall-controller/seed.yaml": 0o600, "/etc/firewall-controller/shoot.yaml": 0o600},
			// What the generator and Gardener would have written.
			extra: func(ns string) []client.Object {
				return []client.Object{
					&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shoot--abc--cluster-firewall-seed-kubeconfig", Namespace: ns}, Data: map[string][]byte{"value": []byte("apiVersion: v1\nkind: Config\n")}},
					&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shoot-access-firewall-controller", Namespace: ns}, Data: map[string][]byte{"kubeconfig": []byte("apiVersion: v1\nkind: Config\n")}},
				}
			},
			sources: []string{"seed", "shoot"},
		},
		"metal-stack.yaml": {files: map[string]int{configPath: 0o600}, sources: []string{"metal"}},
		"static.yaml":      {files: map[string]int{configPath: 0o644}, sources: []string{"static"}},
	}
	for _, name := range userdatatest.Samples {
		tc, ok := shapes[name]
		if !ok {
			t.Fatalf("no expectations for sample %s", name)
		}
		t.Run(name, func(t *testing.T) {
			sample, err := userdatatest.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			deploy, objs := sample.Deployment, sample.Objects
			if tc.extra != nil {
				objs = append(objs, tc.extra(deploy.Namespace)...)
			}
			scheme := runtime.NewScheme()
			_ = clientgoscheme.AddToScheme(scheme)
			reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()

			res, err := New(reader).Render(context.Background(), deploy.Namespace, &deploy.Spec.Template.Spec)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			cfg := parseIgnition(t, res.Userdata)
			if len(cfg.Storage.Files) != len(tc.files) {
				t.Errorf("files %v, want %v", res.Files, tc.files)
			}
			for path, mode := range tc.files {
				_, f := fileContents(t, cfg, path)
				if *f.Mode != mode {
					t.Errorf("%s: mode %o, want %o", path, *f.Mode, mode)
				}
			}

			content, _ := fileContents(t, cfg, configPath)
			agentCfg, err := agentconfig.Parse([]byte(content))
			if err != nil {
				t.Fatalf("the agent rejects the rendered config: %v", err)
			}
			s := agentCfg.Sources
			present := map[string]bool{"seed": s.Seed != nil, "shoot": s.Shoot != nil, "metal": s.Metal != nil, "static": s.Static != nil}
			for _, src := range []string{"seed", "shoot", "metal", "static"} {
				if present[src] != slices.Contains(tc.sources, src) {
					t.Errorf("source %s present=%v", src, present[src])
				}
			}
			for _, kube := range []*agentconfig.KubeSource{s.Seed, s.Shoot} {
				if kube != nil && !slices.Contains(res.Files, kube.Kubeconfig) {
					t.Errorf("the config names %s, which is not rendered", kube.Kubeconfig)
				}
			}
		})
	}
}
