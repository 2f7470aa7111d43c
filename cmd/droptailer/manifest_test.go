package main

import (
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// The sample Deployment is what `stern -n firewall drop` finds: a pod named droptailer-...
// in the firewall namespace, running this binary against the exporter Service.
func TestSampleDeployment(t *testing.T) {
	raw, err := os.ReadFile("../../config/samples/workload/droptailer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers
	if d.Namespace != "firewall" || !strings.HasPrefix(d.Name, "drop") || len(c) != 1 ||
		!strings.Contains(strings.Join(c[0].Args, " "), "nftables-exporter.firewall.svc.cluster.local:9630") {
		t.Fatalf("deployment %s/%s containers %+v", d.Namespace, d.Name, c)
	}
	// The image `make image` builds, of this release (`make set-version` keeps the tag).
	version, err := os.ReadFile("../../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	if want := "ghcr.io/palisade-fw/palisade-droptailer:" + strings.TrimSpace(string(version)); c[0].Image != want {
		t.Errorf("image %s, want %s", c[0].Image, want)
	}
}
