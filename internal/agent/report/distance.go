package report

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/atomicfile"
)

// MaxDistance is the longest distance the API allows.
const MaxDistance = 8

// FRR renders Firewall.distance as a route-map that prepends the firewall's own AS
// distance times; the BGP configuration applies it to outbound announcements
// (`neighbor ... route-map <RouteMap> out`), so a firewall with a longer distance attracts
// less traffic.
type FRR struct {
	File     string // where the fragment is written
	RouteMap string
	// ASN overrides the AS from the firewall's networks.
	ASN int64
	// Checker is the vtysh binary; empty looks it up in PATH, "-" means none. Without
	// one the fragment is written unchecked and distance is reported as not supported.
	Checker string
	// VtyshArgs go before every vtysh command, e.g. ["-N", "pathspace"].
	VtyshArgs []string
	// Control drives FRR; nil uses vtysh (Checker).
	Control FRRControl
}

// FRRControl is what the distance needs of FRR: check a fragment, load it into the running
// daemons, and show what they run.
type FRRControl interface {
	Check(ctx context.Context, file string) error
	Load(ctx context.Context, file string) error
	RunningConfig(ctx context.Context) (string, error)
}

// DistanceResult is what Configure achieved.
type DistanceResult struct {
	Distance  uint8 // the distance in the written fragment
	Supported bool  // FRR's checker is installed and accepted the fragment
}

// Render returns the fragment for distance prepends of asn.
func (f FRR) Render(distance uint8, asn int64) (string, error) {
	if distance > MaxDistance {
		return "", fmt.Errorf("distance %d is above %d", distance, MaxDistance)
	}
	if f.ASN != 0 {
		asn = f.ASN
	}
	if distance > 0 && (asn <= 0 || asn > 4294967295) {
		return "", errors.New("the firewall's AS number is unknown (set distance.asn)")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "! managed by the palisade agent: BGP distance %d\n", distance)
	fmt.Fprintf(&b, "route-map %s permit 10\n", f.RouteMap)
	if distance > 0 {
		asns := make([]string, distance)
		for i := range asns {
			asns[i] = fmt.Sprint(asn)
		}
		fmt.Fprintf(&b, " set as-path prepend %s\n", strings.Join(asns, " "))
	}
	b.WriteString("exit\n")
	return b.String(), nil
}

// Configure checks the fragment with `vtysh --dryrun --inputfile`, writes it when its
// content changed, loads it into the running FRR (`vtysh --inputfile`) and reports the
// distance only once FRR's running configuration holds it. A fragment FRR rejects is not
// written; the previous one stays. Without FRR the fragment is written unchecked and the
// distance reported as not supported.
func (f FRR) Configure(ctx context.Context, distance uint8, asn int64) (DistanceResult, error) {
	text, err := f.Render(distance, asn)
	if err != nil {
		return DistanceResult{}, err
	}
	ctl := f.control()
	if ctl != nil {
		if err := checkText(ctx, ctl, filepath.Dir(f.File), text); err != nil {
			return DistanceResult{}, err
		}
	}
	// 0644 whatever the umask: FRR's daemons run as their own user.
	if _, err := atomicfile.WriteFileIfChanged(f.File, []byte(text), 0o644, atomicfile.Parents(0o755)); err != nil {
		return DistanceResult{}, err
	}
	if ctl == nil {
		return DistanceResult{Distance: distance, Supported: false}, nil
	}
	if err := f.load(ctx, ctl, text); err != nil {
		return DistanceResult{}, fmt.Errorf("loading the distance into FRR: %w", err)
	}
	if err := f.Confirm(ctx, distance, asn); err != nil {
		return DistanceResult{}, err
	}
	return DistanceResult{Distance: distance, Supported: true}, nil
}

// load loads the fragment into the running daemons. Loading only adds commands, so the
// previous prepend is cleared first: a distance of 0 then leaves none.
func (f FRR) load(ctx context.Context, ctl FRRControl, text string) error {
	header := "route-map " + f.RouteMap + " permit 10\n"
	loadText := strings.Replace(text, header, header+" no set as-path prepend\n", 1)
	tmp, err := os.CreateTemp(filepath.Dir(f.File), ".palisade-distance-load-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(loadText); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return ctl.Load(ctx, tmp.Name())
}

// Confirm checks that FRR's running configuration holds the route-map of distance.
func (f FRR) Confirm(ctx context.Context, distance uint8, asn int64) error {
	ctl := f.control()
	if ctl == nil {
		return errors.New("FRR is not installed")
	}
	text, err := f.Render(distance, asn)
	if err != nil {
		return err
	}
	running, err := ctl.RunningConfig(ctx)
	if err != nil {
		return fmt.Errorf("reading FRR's running configuration: %w", err)
	}
	want := routeMapBlock(text, f.RouteMap)
	if got := routeMapBlock(running, f.RouteMap); !slices.Equal(got, want) {
		return fmt.Errorf("FRR runs route-map %s as %q, want %q", f.RouteMap, got, want)
	}
	return nil
}

// routeMapBlock returns the trimmed lines of "route-map NAME permit 10" up to "exit".
func routeMapBlock(config, name string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(config, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "route-map "+name+" permit 10":
			in, out = true, []string{}
		case in && (line == "exit" || line == "!" || strings.HasPrefix(line, "route-map ")):
			return out
		case in && line != "":
			out = append(out, line)
		}
	}
	return out
}

// Available tells whether FRR's vtysh is installed, i.e. whether distances are supported.
func (f FRR) Available() bool { return f.control() != nil }

func (f FRR) control() FRRControl {
	if f.Control != nil {
		return f.Control
	}
	if bin := f.checker(); bin != "" {
		return vtysh{bin: bin, args: f.VtyshArgs}
	}
	return nil
}

// vtysh drives FRR through its shell.
type vtysh struct {
	bin  string
	args []string
}

func (v vtysh) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, v.bin, append(slices.Clone(v.args), args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (v vtysh) Check(ctx context.Context, file string) error {
	if _, err := v.run(ctx, "--dryrun", "--inputfile", file); err != nil {
		return fmt.Errorf("FRR rejected the distance fragment: %w", err)
	}
	return nil
}

func (v vtysh) Load(ctx context.Context, file string) error {
	_, err := v.run(ctx, "--inputfile", file)
	return err
}

func (v vtysh) RunningConfig(ctx context.Context) (string, error) {
	return v.run(ctx, "-c", "show running-config")
}

func (f FRR) checker() string {
	switch f.Checker {
	case "":
		path, _ := exec.LookPath("vtysh")
		return path
	case "-":
		return ""
	}
	return f.Checker
}

func checkText(ctx context.Context, ctl FRRControl, dir, text string) error {
	tmp, err := os.CreateTemp(dir, ".palisade-distance-check-*")
	if err != nil {
		tmp, err = os.CreateTemp("", "palisade-distance-check-*")
		if err != nil {
			return err
		}
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return ctl.Check(ctx, tmp.Name())
}
