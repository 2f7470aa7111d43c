// Package plugin runs `kubectl palisade` commands, as a user types them, against the real API
// server, the simulated metal-api and the manager: a roll watched to the end, the history, a
// pause that holds a change back, and an undo that brings the previous image back through a
// new roll.
package plugin

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/plugin"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
)

const (
	ns       = "tenant-a"
	name     = "edge"
	newImage = "firewall-ubuntu-3.0.20240201"
)

// kubectl runs one plugin command line with the given kubeconfig and returns its output.
func kubectl(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := plugin.NewRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	t.Logf("$ kubectl palisade %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String() + errOut.String(), err
}

func mustKubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := kubectl(t, kubeconfig, args...)
	if err != nil {
		t.Fatalf("kubectl palisade %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestRolloutCommands(t *testing.T) {
	stack, err := harness.Start(harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.Stop() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := stack.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := stack.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	deploy := &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{v2.NoControllerConnectionAnnotation: "true"}},
		Spec: v2.FirewallDeploymentSpec{
			Strategy:             v2.StrategyRollingUpdate,
			Replicas:             1,
			RevisionHistoryLimit: ptr.To[int32](2),
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: v2.FirewallSpec{
					Size: metalsim.DefaultSize, Image: metalsim.DefaultImage,
					Partition: metalsim.DefaultPartition, Project: metalsim.DefaultProject,
					Networks: []string{metalsim.DefaultExternalNetwork, metalsim.DefaultPrivateNetwork},
					Userdata: `{"ignition":{"version":"3.4.0"}}`,
				},
			},
		},
	}
	if err := c.Create(ctx, deploy); err != nil {
		t.Fatal(err)
	}

	out := mustKubectl(t, kubeconfig, "rollout", "status", name, "--timeout", "2m")
	if !strings.Contains(out, "successfully rolled out") {
		t.Fatalf("status did not report the first rollout as done:\n%s", out)
	}

	setImage(t, c, newImage)
	out = mustKubectl(t, kubeconfig, "rollout", "status", name, "--timeout", "2m")
	if !strings.Contains(out, "successfully rolled out") || !strings.Contains(out, "Waiting") {
		t.Fatalf("status did not follow the roll to its end:\n%s", out)
	}
	waitForImages(t, c, newImage)

	out = mustKubectl(t, kubeconfig, "rollout", "history", name)
	if !strings.Contains(out, metalsim.DefaultImage) || !strings.Contains(out, newImage) || !strings.Contains(out, "(current)") {
		t.Fatalf("history lacks the two revisions:\n%s", out)
	}
	first := firstRevision(t, c)
	out = mustKubectl(t, kubeconfig, "rollout", "history", name, "--revision", first, "-o", "yaml")
	if !strings.Contains(out, "kind: FirewallSet") || !strings.Contains(out, "image: "+metalsim.DefaultImage) {
		t.Fatalf("history --revision %s -o yaml does not show the first set:\n%s", first, out)
	}

	// Pause holds a change back: no new set while paused; resume lets it through.
	mustKubectl(t, kubeconfig, "rollout", "pause", name)
	if _, err := kubectl(t, kubeconfig, "rollout", "pause", name); err == nil {
		t.Fatal("pausing twice should say it is already paused")
	}
	waitFor(t, "the deployment reports Paused", func() bool {
		d := get(t, c)
		cond := findCondition(d.Status.Conditions, v2.ConditionPaused)
		return cond != nil && cond.Status == metav1.ConditionTrue
	})
	setsBefore := countSets(t, c)
	setImage(t, c, "firewall-ubuntu-3.0.20240503-paused-change")
	time.Sleep(3 * time.Second) // several reconciles of a paused deployment; none may create a set
	if got := countSets(t, c); got != setsBefore {
		t.Fatalf("a paused deployment created a set: %d sets, had %d", got, setsBefore)
	}
	setImage(t, c, newImage) // take the change back before resuming
	mustKubectl(t, kubeconfig, "rollout", "resume", name)

	// Undo: the previous image comes back through a new roll.
	out = mustKubectl(t, kubeconfig, "rollout", "undo", name)
	if !strings.Contains(out, "rolled back to revision "+first) {
		t.Fatalf("undo output: %s", out)
	}
	if got := get(t, c).Spec.Template.Spec.Image; got != metalsim.DefaultImage {
		t.Fatalf("undo wrote image %q into the deployment, want %q", got, metalsim.DefaultImage)
	}
	mustKubectl(t, kubeconfig, "rollout", "status", name, "--timeout", "2m")
	waitForImages(t, c, metalsim.DefaultImage)
	if _, err := kubectl(t, kubeconfig, "rollout", "undo", name, "--to-revision", "42"); err == nil {
		t.Fatal("undo to a revision that does not exist must fail")
	}

	mustKubectl(t, kubeconfig, "rollout", "restart", name)
	if got := get(t, c).Annotations[v2.RollSetAnnotation]; got != "true" {
		t.Fatalf("restart did not request a roll: annotation %q", got)
	}
}

func get(t *testing.T, c client.Client) *v2.FirewallDeployment {
	t.Helper()
	d := &v2.FirewallDeployment{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func setImage(t *testing.T, c client.Client, image string) {
	t.Helper()
	waitFor(t, "the image change is written", func() bool {
		d := get(t, c)
		d.Spec.Template.Spec.Image = image
		return c.Update(context.Background(), d) == nil
	})
}

// firstRevision is the lowest revision among the deployment's sets.
func firstRevision(t *testing.T, c client.Client) string {
	t.Helper()
	var sets v2.FirewallSetList
	if err := c.List(context.Background(), &sets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	first := -1
	for i := range sets.Items {
		if r := fwutil.Revision(&sets.Items[i]); first < 0 || r < first {
			first = r
		}
	}
	return strconv.Itoa(first)
}

func countSets(t *testing.T, c client.Client) int {
	t.Helper()
	var sets v2.FirewallSetList
	if err := c.List(context.Background(), &sets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return len(sets.Items)
}

// waitForImages waits until every firewall of the namespace runs image.
func waitForImages(t *testing.T, c client.Client, image string) {
	t.Helper()
	waitFor(t, "every firewall runs "+image, func() bool {
		var fws v2.FirewallList
		if err := c.List(context.Background(), &fws, client.InNamespace(ns)); err != nil || len(fws.Items) == 0 {
			return false
		}
		for _, fw := range fws.Items {
			if fw.Spec.Image != image || fw.DeletionTimestamp != nil {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}
