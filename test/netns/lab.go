// Package netns builds small networks of Linux network namespaces joined by veth pairs, runs
// listeners and connections inside them, and runs the agent in a firewall namespace. Every
// address used lives only inside these namespaces.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	vnetns "github.com/vishvananda/netns"

	"github.com/palisade-fw/palisade/internal/testenv/ci"
)

// RequirePrivileges skips the test unless it runs as root with `ip` and `nft` installed.
// CI runs as root with both installed, so there these tests always run.
func RequirePrivileges(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		ci.SkipOutsideCI(t, "skipping: network namespace tests need root")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			ci.SkipOutsideCI(t, "skipping: "+bin+" is not installed (apt-get install -y iproute2 nftables)")
		}
	}
}

// Lab owns a set of namespaces and removes them when the test ends.
type Lab struct {
	t      testing.TB
	prefix string
	links  int
}

// NewLab returns a lab whose namespace names are unique to this test run.
func NewLab(t testing.TB) *Lab {
	t.Helper()
	RequirePrivileges(t)
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return &Lab{t: t, prefix: "pal" + hex.EncodeToString(b)}
}

// NS creates a namespace with loopback up and returns its full name.
func (l *Lab) NS(name string) string {
	l.t.Helper()
	full := l.prefix + "-" + name
	l.Run("ip", "netns", "add", full)
	l.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", full).Run() })
	l.In(full, "ip", "link", "set", "lo", "up")
	return full
}

// Router enables IPv4 and IPv6 forwarding in ns.
func (l *Lab) Router(ns string) {
	l.t.Helper()
	l.In(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.In(ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
}

// Link joins nsA and nsB with a veth pair named ifA/ifB and assigns the addresses (CIDR
// notation; IPv6 addresses skip duplicate address detection so they work at once).
func (l *Lab) Link(nsA, ifA string, addrsA []string, nsB, ifB string, addrsB []string) {
	l.t.Helper()
	l.links++
	tmpA, tmpB := fmt.Sprintf("%sa%d", l.prefix, l.links), fmt.Sprintf("%sb%d", l.prefix, l.links)
	l.Run("ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB)
	l.Run("ip", "link", "set", tmpA, "netns", nsA)
	l.Run("ip", "link", "set", tmpB, "netns", nsB)
	for _, side := range []struct {
		ns, tmp, name string
		addrs         []string
	}{{nsA, tmpA, ifA, addrsA}, {nsB, tmpB, ifB, addrsB}} {
		l.In(side.ns, "ip", "link", "set", side.tmp, "name", side.name)
		// Without DAD the link-local address is usable at once, so IPv6 neighbour
		// discovery (and forwarding) works from the first packet.
		l.In(side.ns, "sysctl", "-qw", "net.ipv6.conf."+side.name+".accept_dad=0")
		for _, a := range side.addrs {
			args := []string{"ip", "addr", "add", a, "dev", side.name}
			if strings.Contains(a, ":") {
				args = append(args, "nodad")
			}
			l.In(side.ns, args...)
		}
		l.In(side.ns, "ip", "link", "set", side.name, "up")
	}
}

// Addr adds an address to an existing interface (e.g. a load-balancer IP on lo).
func (l *Lab) Addr(ns, dev, addr string) {
	l.t.Helper()
	args := []string{"ip", "addr", "add", addr, "dev", dev}
	if strings.Contains(addr, ":") {
		args = append(args, "nodad")
	}
	l.In(ns, args...)
}

// Route adds a route in ns; dst may be "default".
func (l *Lab) Route(ns, dst, via string) {
	l.t.Helper()
	args := []string{"ip", "route", "add", dst, "via", via}
	if strings.Contains(via, ":") {
		args = []string{"ip", "-6", "route", "add", dst, "via", via}
	}
	l.In(ns, args...)
}

// In runs a command inside ns and fails the test on error.
func (l *Lab) In(ns string, args ...string) string {
	l.t.Helper()
	return l.Run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// TryIn runs a command inside ns and returns its combined output and error.
func (l *Lab) TryIn(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// Run runs a command in the test's namespace and fails the test on error.
func (l *Lab) Run(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Do runs fn on an OS thread switched into ns. Sockets created in fn stay in ns.
func Do(ns string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := vnetns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := vnetns.GetFromName(ns)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := vnetns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	fnErr := fn()
	if err := vnetns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it when the goroutine ends.
		return fmt.Errorf("restoring namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return fnErr
}
