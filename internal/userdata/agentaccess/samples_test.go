package agentaccess

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/userdata"
	"github.com/palisade-fw/palisade/internal/userdata/userdatatest"
)

// The samples pass the real API server's schema and CEL validation, and each renders once its
// Secrets exist: the generated seed kubeconfig by Ensure, the Gardener shoot kubeconfig faked.
func TestSamplesOnAPIServer(t *testing.T) {
	ctx := context.Background()
	for _, name := range userdatatest.Samples {
		t.Run(name, func(t *testing.T) {
			sample, err := userdatatest.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			deploy := sample.Deployment
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: deploy.Namespace}}
			if err := k8sClient.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			mustCreate(t, ctx, append(sample.Objects, deploy)...)
			ownedFirewall(t, ctx, deploy, deploy.Name+"-set", deploy.Name+"-abcde")

			renderer := userdata.New(k8sClient)
			generated := userdata.GeneratedKubeconfigs(&deploy.Spec.Template.Spec)
			if len(generated) > 0 {
				// Before the generator ran, rendering waits for the Secret.
				_, err := renderer.Render(ctx, deploy.Namespace, &deploy.Spec.Template.Spec)
				if m, ok := userdata.IsMissing(err); !ok || m.Name != generated[0].Name {
					t.Fatalf("want the generated Secret missing, got %v", err)
				}
				if _, err := newAccess(&clock{t: time.Now()}).Ensure(ctx, deploy); err != nil {
					t.Fatal(err)
				}
			}
			for _, secretName := range userdata.ReferencedSecrets(&deploy.Spec.Template.Spec) {
				err := k8sClient.Get(ctx, client.ObjectKey{Namespace: deploy.Namespace, Name: secretName}, &corev1.Secret{})
				if apierrors.IsNotFound(err) {
					// Provided by someone else (Gardener) in real life.
					fake := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: deploy.Namespace}, Data: map[string][]byte{}}
					for _, c := range deploy.Spec.Template.Spec.UserdataContents {
						if c.SecretRef != nil && c.SecretRef.Name == secretName {
							fake.Data[userdata.KeyOrDefault(c.SecretRef.Key)] = []byte("apiVersion: v1\nkind: Config\n")
						}
					}
					mustCreate(t, ctx, fake)
				}
			}
			res, err := renderer.Render(ctx, deploy.Namespace, &deploy.Spec.Template.Spec)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if len(res.Files) != len(deploy.Spec.Template.Spec.UserdataContents) {
				t.Errorf("files %v", res.Files)
			}
			for _, ref := range generated {
				var s corev1.Secret
				if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: deploy.Namespace, Name: ref.Name}, &s); err != nil {
					t.Fatal(err)
				}
				agent, _ := agentClient(t, s.Data[ref.Key])
				if err := agent.Get(ctx, client.ObjectKey{Namespace: deploy.Namespace, Name: deploy.Name + "-abcde"}, &v2.Firewall{}); err != nil {
					t.Errorf("generated kubeconfig cannot read the firewall: %v", err)
				}
			}
		})
	}
}
