// Package userdatatest loads the userdata samples in config/samples/userdata for tests.
package userdatatest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/testenv"
)

// Samples are the seed's three agent config shapes.
var Samples = []string{"gardener.yaml", "metal-stack.yaml", "static.yaml"}

// Sample is one decoded sample file.
type Sample struct {
	Deployment *v2.FirewallDeployment
	// Objects are the Secrets and ConfigMaps shipped with it; Secret stringData is folded into
	// data, as the API server does.
	Objects []client.Object
}

// Load decodes config/samples/userdata/<name> strictly (unknown fields are errors).
func Load(name string) (*Sample, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "samples", "userdata", name))
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v2.AddToScheme(scheme); err != nil {
		return nil, err
	}
	decode := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer().Decode

	sample := &Sample{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		switch o := obj.(type) {
		case *v2.FirewallDeployment:
			sample.Deployment = o
		case *corev1.Secret:
			foldStringData(o)
			sample.Objects = append(sample.Objects, o)
		case client.Object:
			sample.Objects = append(sample.Objects, o)
		}
	}
	if sample.Deployment == nil {
		return nil, fmt.Errorf("%s has no FirewallDeployment", name)
	}
	return sample, nil
}

func foldStringData(s *corev1.Secret) {
	for k, v := range s.StringData {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}
