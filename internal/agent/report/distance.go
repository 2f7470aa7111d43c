package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
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

// Configure writes the fragment when its content changed and checks it with
// `vtysh --dryrun --inputfile` where FRR is installed. A fragment FRR rejects is not
// written; the previous one stays.
func (f FRR) Configure(ctx context.Context, distance uint8, asn int64) (DistanceResult, error) {
	text, err := f.Render(distance, asn)
	if err != nil {
		return DistanceResult{}, err
	}
	checker := f.checker()
	if checker != "" {
		if err := check(ctx, checker, filepath.Dir(f.File), text); err != nil {
			return DistanceResult{}, err
		}
	}
	if current, err := os.ReadFile(f.File); err != nil || !bytes.Equal(current, []byte(text)) {
		if err := os.MkdirAll(filepath.Dir(f.File), 0o755); err != nil {
			return DistanceResult{}, err
		}
		tmp := f.File + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			return DistanceResult{}, err
		}
		if err := os.Rename(tmp, f.File); err != nil {
			return DistanceResult{}, err
		}
	}
	return DistanceResult{Distance: distance, Supported: checker != ""}, nil
}

// Available tells whether FRR's checker is installed, i.e. whether distances are supported.
func (f FRR) Available() bool { return f.checker() != "" }

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

func check(ctx context.Context, vtysh, dir, text string) error {
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
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, vtysh, "--dryrun", "--inputfile", tmp.Name()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("FRR rejected the distance fragment: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
