// Package scheme builds the runtime scheme Palisade's binaries and tests share.
package scheme

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	apiv1 "github.com/palisade-fw/palisade/api/v1"
	apiv2 "github.com/palisade-fw/palisade/api/v2"
)

// New returns a scheme with the Kubernetes built-ins, CRDs and both Palisade API groups.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, apiv1.AddToScheme, apiv2.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}
