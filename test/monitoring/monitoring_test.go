// Package monitoring checks the alerts and the dashboard the chart ships against the metrics
// the manager really exports: the manager runs a roll against the real API server and the
// simulated metal-api, its registry is gathered, and every metric name in a rule or a panel
// must be among what was gathered.
package monitoring

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	dto "github.com/prometheus/client_model/go"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
)

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// metricName matches the metric names of Palisade and controller-runtime in a PromQL expression.
var metricName = regexp.MustCompile(`\b(?:palisade|controller_runtime|workqueue)_[a-z0-9_]+\b`)

func TestAlertsAndDashboardUseExportedMetrics(t *testing.T) {
	stack, err := harness.Start(harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.Stop() })
	// The harness's own metal client has no metrics; a client as the manager builds it does.
	instrumented, err := metal.New(metal.Config{URL: stack.SimURL, HMACKey: harness.MetalAdminKey, HMACAuthType: metal.AuthTypeAdmin, Registerer: crmetrics.Registry})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := instrumented.GetPartition(ctx, metalsim.DefaultPartition); err != nil {
		t.Fatal(err)
	}
	rollOnce(ctx, t, stack.Client)

	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "charts", "palisade", "files", "monitoring")

	var rules ruleFile
	readInto(t, filepath.Join(dir, "alerts.yaml"), func(b []byte, v any) error { return yaml.Unmarshal(b, v) }, &rules)
	var exprs []string
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts++
			if r.Alert == "" || r.Expr == "" || r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %q in group %q lacks a name, expr, for, severity or summary", r.Alert, g.Name)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	var dash dashboard
	readInto(t, filepath.Join(dir, "dashboard.json"), json.Unmarshal, &dash)
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			exprs = append(exprs, target.Expr)
		}
	}
	if alerts < 5 || len(dash.Panels) < 6 {
		t.Fatalf("expected at least 5 alerts and 6 panels, got %d and %d", alerts, len(dash.Panels))
	}
	// The roll's last step (the new set's promotion, which observes the rollout duration) may
	// follow the state rollOnce waits for by a moment: gather until every name appeared or a
	// deadline passed, then judge.
	var exported map[string]bool
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		exported = gatheredNames(t)
		if allExported(exprs, exported) || time.Now().After(deadline) {
			break
		}
	}
	for _, expr := range exprs {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("expression names no Palisade or controller-runtime metric: %s", expr)
		}
		for _, name := range names {
			if !exported[name] {
				t.Errorf("%q in %q is not exported by the manager (exported: %s)", name, expr, strings.Join(sortedKeys(exported, "palisade_"), ", "))
			}
		}
	}
}

func allExported(exprs []string, exported map[string]bool) bool {
	for _, expr := range exprs {
		for _, name := range metricName.FindAllString(expr, -1) {
			if !exported[name] {
				return false
			}
		}
	}
	return true
}

// rollOnce creates a deployment, waits until it is available, changes its image and waits
// until the roll is done, so that every series the alerts use has been written once.
func rollOnce(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	ns := "monitoring"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	d := &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns, Annotations: map[string]string{v2.NoControllerConnectionAnnotation: "true"}},
		Spec: v2.FirewallDeploymentSpec{
			Replicas: 1,
			Template: v2.FirewallTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "edge"}},
				Spec: v2.FirewallSpec{
					Size: metalsim.DefaultSize, Image: metalsim.DefaultImage,
					Partition: metalsim.DefaultPartition, Project: metalsim.DefaultProject,
					Networks: []string{metalsim.DefaultExternalNetwork, metalsim.DefaultPrivateNetwork},
					Userdata: `{"ignition":{"version":"3.4.0"}}`,
				},
			},
		},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitForImage := func(image string) {
		for {
			got := &v2.FirewallDeployment{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
				t.Fatal(err)
			}
			var fws v2.FirewallList
			if err := c.List(ctx, &fws, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
			if got.Status.ReadyReplicas == 1 && len(fws.Items) == 1 && fws.Items[0].Spec.Image == image {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("deployment did not roll to %s", image)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	waitForImage(metalsim.DefaultImage)
	for {
		got := &v2.FirewallDeployment{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
			t.Fatal(err)
		}
		got.Spec.Template.Spec.Image = "firewall-ubuntu-3.0.20240201"
		if err := c.Update(ctx, got); err == nil {
			break
		}
	}
	waitForImage("firewall-ubuntu-3.0.20240201")
}

// gatheredNames is every series name the manager's registry exports, with the _bucket, _sum
// and _count series of histograms and summaries.
func gatheredNames(t *testing.T) map[string]bool {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+suffix] = true
			}
		case dto.MetricType_SUMMARY:
			for _, suffix := range []string{"_sum", "_count"} {
				names[f.GetName()+suffix] = true
			}
		}
	}
	return names
}

func readInto(t *testing.T, path string, unmarshal func([]byte, any) error, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func sortedKeys(m map[string]bool, prefix string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
