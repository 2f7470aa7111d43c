// Package crd checks the generated CRDs against the real API server: every sample and the seed
// documents' manifests are accepted unchanged, and invalid objects are rejected with a message
// that names the field.
package crd

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/palisade-fw/palisade/internal/testenv"
)

var (
	env       *envtest.Environment
	k8sClient client.Client
	restCfg   *rest.Config
	ctx       = context.Background()
)

func TestCRDs(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "CRD validation")
}

var _ = BeforeSuite(func() {
	_, cfg, err := startEnv()
	Expect(err).NotTo(HaveOccurred())
	restCfg = cfg
	k8sClient, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	for _, ns := range []string{"firewall", "shoot--proj--name"} {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
})

var _ = AfterSuite(func() {
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

func startEnv() (*envtest.Environment, *rest.Config, error) {
	e, cfg, err := testenv.Start()
	env = e
	return e, cfg, err
}
