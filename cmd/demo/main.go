// Command demo runs Palisade on one machine with no cluster and no metal-stack: a local API
// server (envtest), the metal-api simulator and the manager. It applies example
// FirewallDeployments, shows them provision, rolls them to a new image and shows the rolling
// update until it is done.
//
//	make demo                        # live view, runs until Ctrl-C
//	DEMO_NONINTERACTIVE=1 make demo  # line output, exits 0 after the roll (CI)
//
// Environment: DEMO_NONINTERACTIVE=1 exits after the roll; DEMO_TIMEOUT (default 5m) bounds
// the time from a running cluster to a finished roll; DEMO_DIR (default .demo in the
// repository) receives the kubeconfig and the manager log.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/testenv"
)

//go:embed manifests/firewalldeployments.yaml
var exampleManifests []byte

const (
	// The simulator's fleet has both images; the demo upgrades from the older to the newer.
	initialImage = "firewall-ubuntu-3.0.20240201"
	rolledImage  = "firewall-ubuntu-3.0.20240503"
	pollInterval = 250 * time.Millisecond
)

type settings struct {
	interactive bool // keep running after the roll until Ctrl-C
	live        bool // redraw a table in place (a terminal and interactive)
	timeout     time.Duration
	dir         string
}

func loadSettings() (settings, error) {
	s := settings{interactive: os.Getenv("DEMO_NONINTERACTIVE") == "" || os.Getenv("DEMO_NONINTERACTIVE") == "0", timeout: 5 * time.Minute}
	s.live = s.interactive && isTerminal(os.Stdout)
	if v := os.Getenv("DEMO_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return s, fmt.Errorf("DEMO_TIMEOUT: %w", err)
		}
		s.timeout = d
	}
	s.dir = os.Getenv("DEMO_DIR")
	if s.dir == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			return s, err
		}
		s.dir = filepath.Join(root, ".demo")
	}
	return s, nil
}

func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx)
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "demo interrupted")
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	s, err := loadSettings()
	if err != nil {
		return err
	}
	v := &view{out: os.Stdout, live: s.live, start: time.Now()}
	step := func(n int, what string) func() {
		v.logf("[%d/5] %s ...", n, what)
		began := time.Now()
		return func() { v.logf("[%d/5] %s: done in %s", n, what, time.Since(began).Truncate(100*time.Millisecond)) }
	}

	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(s.dir, "manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	stack := newStack(logFile)
	// Stop the manager before the simulator and the API server go away under it (Stop does).
	defer func() {
		if err := stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the API server:", err)
		}
	}()
	for i, part := range []struct {
		what  string
		start func() error
	}{
		{"starting the API server (envtest; the first run builds kube-apiserver and etcd, about 8 minutes)", stack.StartAPIServer},
		{"starting the simulated metal-api", stack.StartSimulator},
		{"starting the manager (controllers and webhooks, log: " + logPath + ")", stack.StartManager},
	} {
		done := step(i+1, part.what)
		if err := part.start(); err != nil {
			return err
		}
		done()
	}
	k8s := stack.Client
	kubeconfig := filepath.Join(s.dir, "kubeconfig")
	if err := stack.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}

	// The timeout starts now: the binary build above may legitimately take minutes.
	deadlineCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	done := step(4, "applying example FirewallDeployments (cmd/demo/manifests) and waiting until they are ready")
	if err := apply(deadlineCtx, k8s, exampleManifests); err != nil {
		return err
	}
	if err := watchUntil(deadlineCtx, k8s, v, "provisioning on "+initialImage, initialImage); err != nil {
		return err
	}
	done()

	done = step(5, "rolling every FirewallDeployment to "+rolledImage)
	if err := setImage(deadlineCtx, k8s, rolledImage); err != nil {
		return err
	}
	if err := watchUntil(deadlineCtx, k8s, v, "rolling update to "+rolledImage, rolledImage); err != nil {
		return err
	}
	done()

	printHowTo(os.Stdout, kubeconfig, logPath, s.interactive)
	v.drawn = 0 // the next frame goes below the instructions instead of over them
	if !s.interactive {
		return nil
	}
	// Keep the view alive (kubectl changes show up) until Ctrl-C.
	err = watchUntil(ctx, k8s, v, "running with KUBECONFIG="+kubeconfig+"; Ctrl-C stops the demo", "")
	if errors.Is(err, context.Canceled) {
		fmt.Println("\nstopping the demo")
		return nil
	}
	return err
}

// watchUntil shows the objects until every deployment runs all replicas on image (never, for
// an empty image) or ctx ends.
func watchUntil(ctx context.Context, c client.Reader, v *view, status, image string) error {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		snap, err := takeSnapshot(ctx, c)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil {
			ps := snap.progressTo(image)
			line := status
			if image != "" {
				for _, p := range ps {
					line += fmt.Sprintf("\n  %-18s %s %d/%d ready on %s", p.name, bar(p.readyOnImage, p.replicas, 20), p.readyOnImage, p.replicas, image)
					if p.onOtherImage > 0 {
						line += fmt.Sprintf(", %d still on the previous image", p.onOtherImage)
					}
				}
			}
			v.show(snap, line)
			if image != "" && allDone(ps) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				if snap, err := takeSnapshot(context.Background(), c); err == nil {
					fmt.Fprintf(os.Stderr, "timed out while %s; state:\n%s", status, snap.table(time.Now()))
				}
				return fmt.Errorf("timed out while %s", status)
			}
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// apply creates every object of a multi-document manifest.
func apply(ctx context.Context, c client.Client, manifests []byte) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
}

func setImage(ctx context.Context, c client.Client, image string) error {
	var list v2.FirewallDeploymentList
	if err := c.List(ctx, &list); err != nil {
		return err
	}
	for i := range list.Items {
		d := &list.Items[i]
		patch := client.MergeFrom(d.DeepCopy())
		d.Spec.Template.Spec.Image = image
		if err := c.Patch(ctx, d, patch); err != nil {
			return fmt.Errorf("rolling %s/%s: %w", d.Namespace, d.Name, err)
		}
	}
	return nil
}

func printHowTo(w io.Writer, kubeconfig, logPath string, interactive bool) {
	fmt.Fprintf(w, `
The rolling update is complete.

Point kubectl at the demo cluster:
  export KUBECONFIG=%s
  kubectl get firewalldeployments,firewallsets,firewalls -A
  kubectl -n tenant-a patch fwdeploy edge --type merge -p '{"spec":{"replicas":3}}'
Manager log: %s
`, kubeconfig, logPath)
	if interactive {
		fmt.Fprintln(w, "Stop the demo with Ctrl-C (it removes the API server and the simulated machines).")
	}
}
