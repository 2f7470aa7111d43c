package harness

import (
	"fmt"
	"io"
	"os"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/palisade-fw/palisade/internal/testenv"
)

// Workload is a second API server standing in for a workload cluster (shoot), with the CRDs.
type Workload struct {
	Env    *envtest.Environment
	Client client.Client
	// Kubeconfig is a cluster-admin kubeconfig, as a kubeconfig Secret would hold it.
	Kubeconfig []byte
}

// StartWorkload starts a workload cluster.
func StartWorkload() (*Workload, error) {
	env, cfg, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	w := &Workload{Env: env}
	if w.Client, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()}); err == nil {
		var user *envtest.AuthenticatedUser
		if user, err = env.AddUser(envtest.User{Name: "workload-admin", Groups: []string{"system:masters"}}, nil); err == nil {
			w.Kubeconfig, err = user.KubeConfig()
		}
	}
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("workload cluster: %w", err)
	}
	return w, nil
}

// Stop stops the workload cluster.
func (w *Workload) Stop() error { return w.Env.Stop() }

// TestLogger is the logger of test processes: silent unless PALISADE_TEST_LOG is set. It also
// becomes controller-runtime's global logger.
func TestLogger() logr.Logger {
	var out io.Writer = io.Discard
	if os.Getenv("PALISADE_TEST_LOG") != "" {
		out = os.Stderr
	}
	logf.SetLogger(zap.New(zap.WriteTo(out)))
	return logf.Log
}
