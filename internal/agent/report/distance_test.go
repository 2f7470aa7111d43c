package report

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/test/netns"
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

// startFRR runs zebra and bgpd of the installed FRR in a fresh network namespace under
// their own pathspace, with a BGP neighbor that uses the distance route-map; it returns the
// vtysh arguments that reach them.
func startFRR(t *testing.T) []string {
	t.Helper()
	lab := netns.NewLab(t)
	ns := lab.NS("frr")
	pathspace := filepath.Base(ns)
	run := "/var/run/frr/" + pathspace
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	conf := filepath.Join(run, "frr.conf")
	if err := os.WriteFile(conf, []byte(`frr defaults datacenter
router bgp 4200003073
 neighbor 10.99.0.2 remote-as external
 address-family ipv4 unicast
  neighbor 10.99.0.2 route-map palisade-distance out
 exit-address-family
exit
`), 0o644); err != nil {
		t.Fatal(err)
	}
	lab.Run("chown", "-R", "frr:frr", run)
	for _, d := range []string{"zebra", "bgpd"} {
		pid := filepath.Join(run, d+".pid")
		args := []string{"/usr/lib/frr/" + d, "-d", "-N", pathspace, "-f", conf, "-i", pid, "-A", "127.0.0.1", "-P", "0"}
		if d == "bgpd" {
			args = append(args, "-p", "0")
		}
		lab.In(ns, args...)
		t.Cleanup(func() {
			if b, err := os.ReadFile(pid); err == nil {
				_ = exec.Command("kill", strings.TrimSpace(string(b))).Run()
			}
		})
	}
	vtysh := []string{"-N", pathspace}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command("vtysh", append(vtysh, "-c", "show running-config")...).CombinedOutput()
		if err == nil && strings.Contains(string(out), "router bgp 4200003073") {
			return vtysh
		}
		if time.Now().After(deadline) {
			t.Fatalf("FRR did not come up: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func runningRouteMap(t *testing.T, vtysh []string) string {
	t.Helper()
	out, err := exec.Command("vtysh", append(vtysh, "-c", "show running-config")...).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(routeMapBlock(string(out), "palisade-distance"), "\n")
}

// With FRR installed (8.4 on Debian 12) the fragment passes its checker, is loaded into the
// running bgpd, and the distance is reported only once bgpd runs it; a fragment FRR
// rejects is never written. Without vtysh the fragment is written unchecked and the
// distance reported as not supported.
func TestConfigureLoadsIntoRunningFRR(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "frr", "distance.conf")
	if _, err := exec.LookPath("vtysh"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("vtysh not installed: CI must test the real FRR (.ci/run installs frr)")
		}
		t.Log("vtysh not installed (apt-get install frr): only the fake and unchecked paths are tested")
	} else {
		vtysh := startFRR(t)
		frr := FRR{File: file, RouteMap: "palisade-distance", VtyshArgs: vtysh}
		res, err := frr.Configure(ctx, 3, 4200003073)
		if err != nil || !res.Supported || res.Distance != 3 {
			t.Fatalf("configure: %+v %v", res, err)
		}
		if got := runningRouteMap(t, vtysh); got != "set as-path prepend 4200003073 4200003073 4200003073" {
			t.Errorf("bgpd runs %q", got)
		}
		// Back to 0: the prepend is gone from the running configuration.
		if res, err := frr.Configure(ctx, 0, 4200003073); err != nil || res.Distance != 0 {
			t.Fatalf("distance 0: %+v %v", res, err)
		}
		if got := runningRouteMap(t, vtysh); got != "" {
			t.Errorf("after distance 0 bgpd runs %q", got)
		}
		if err := frr.Confirm(ctx, 2, 4200003073); err == nil {
			t.Error("Confirm accepted a distance bgpd does not run")
		}
		before, _ := os.ReadFile(file)
		// An invalid route-map name makes FRR reject the fragment; the file stays.
		bad := FRR{File: file, RouteMap: "bad name", VtyshArgs: vtysh}
		if _, err := bad.Configure(ctx, 2, 65000); err == nil || !strings.Contains(err.Error(), "FRR rejected") {
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

// fakeFRR records loads and answers with what it was told to run.
type fakeFRR struct {
	running string
	loadErr error
	loads   int
}

func (f *fakeFRR) Check(context.Context, string) error { return nil }
func (f *fakeFRR) Load(_ context.Context, file string) error {
	f.loads++
	if f.loadErr != nil {
		return f.loadErr
	}
	b, err := os.ReadFile(file)
	f.running = strings.ReplaceAll(string(b), " no set as-path prepend\n", "")
	return err
}
func (f *fakeFRR) RunningConfig(context.Context) (string, error) { return f.running, nil }

// The distance is reported only after FRR confirms it: a failed load or a running
// configuration without the prepend keeps the previous distance.
func TestDistanceReportedOnlyAfterFRRConfirms(t *testing.T) {
	ctx := context.Background()
	fake := &fakeFRR{}
	frr := FRR{File: filepath.Join(t.TempDir(), "d.conf"), RouteMap: "palisade-distance", Control: fake}
	if res, err := frr.Configure(ctx, 2, 65000); err != nil || res.Distance != 2 || !res.Supported || fake.loads != 1 {
		t.Fatalf("configure: %+v %v loads %d", res, err, fake.loads)
	}
	fake.loadErr = errors.New("bgpd not running")
	if _, err := frr.Configure(ctx, 3, 65000); err == nil {
		t.Fatal("a failed load reported a distance")
	}
	fake.loadErr = nil
	fake.running = "route-map palisade-distance permit 10\nexit\n" // FRR restarted and forgot
	if err := frr.Confirm(ctx, 2, 65000); err == nil {
		t.Error("Confirm passed without the prepend")
	}

	hub := NewHub(HubOptions{Distance: &frr, FromSeed: true})
	hub.configureDistance(ctx, 2, 65000)
	if st := hub.State(); st.Distance != 2 || !st.DistanceSupported {
		t.Fatalf("state %+v", st)
	}
	fake.running = ""
	hub.reconfirmDistance(ctx) // loads again
	if !strings.Contains(fake.running, "prepend 65000 65000") {
		t.Errorf("not reloaded: %q", fake.running)
	}
	fake.loadErr = errors.New("vtysh failed")
	hub.configureDistance(ctx, 5, 65000)
	if st := hub.State(); st.Distance != 2 {
		t.Errorf("distance %d reported although FRR did not load it", st.Distance)
	}
}
