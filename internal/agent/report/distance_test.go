package report

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderDistance(t *testing.T) {
	f := FRR{RouteMap: "palisade-distance"}
	text, err := f.Render(3, 4200003073)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "route-map palisade-distance permit 10\n set as-path prepend 4200003073 4200003073 4200003073\nexit\n") {
		t.Errorf("fragment:\n%s", text)
	}
	if text, err := f.Render(0, 0); err != nil || strings.Contains(text, "prepend") {
		t.Errorf("distance 0 needs no AS and prepends nothing: %v\n%s", err, text)
	}
	if _, err := f.Render(2, 0); err == nil {
		t.Error("distance without AS rendered")
	}
	if _, err := f.Render(9, 65000); err == nil {
		t.Error("distance 9 rendered")
	}
	if text, _ := (FRR{RouteMap: "m", ASN: 65001}).Render(1, 65000); !strings.Contains(text, "prepend 65001\n") {
		t.Errorf("configured AS not preferred:\n%s", text)
	}
}

// With FRR installed the fragment passes its checker, and a fragment it rejects is never
// written; without vtysh it is written unchecked and reported as not supported.
func TestConfigureChecksWithFRR(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "frr", "distance.conf")
	if _, err := exec.LookPath("vtysh"); err != nil {
		t.Log("vtysh not installed: only the unchecked path is tested")
	} else {
		res, err := FRR{File: file, RouteMap: "palisade-distance"}.Configure(ctx, 3, 4200003073)
		if err != nil || !res.Supported || res.Distance != 3 {
			t.Fatalf("configure: %+v %v", res, err)
		}
		before, _ := os.ReadFile(file)
		// An invalid route-map name makes FRR reject the fragment; the file stays.
		if _, err := (FRR{File: file, RouteMap: "bad name"}).Configure(ctx, 2, 65000); err == nil || !strings.Contains(err.Error(), "FRR rejected") {
			t.Fatalf("rejected fragment: %v", err)
		}
		if after, _ := os.ReadFile(file); string(after) != string(before) {
			t.Error("a rejected fragment replaced the file")
		}
	}
	res, err := FRR{File: file, RouteMap: "palisade-distance", Checker: "-"}.Configure(ctx, 1, 65000)
	if err != nil || res.Supported || res.Distance != 1 {
		t.Fatalf("without FRR: %+v %v", res, err)
	}
	if data, _ := os.ReadFile(file); !strings.Contains(string(data), "prepend 65000\n") {
		t.Errorf("file:\n%s", data)
	}
}
