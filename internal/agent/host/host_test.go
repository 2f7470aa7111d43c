package host

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/test/netns"
)

func addrs(t *testing.T, lab *netns.Lab, ns, dev string) string {
	t.Helper()
	return lab.In(ns, "ip", "addr", "show", "dev", dev)
}

func snat(iface string, ips ...string) model.SNAT {
	s := model.SNAT{NetworkID: "internet", Interface: iface}
	for _, ip := range ips {
		s.IPs = append(s.IPs, netip.MustParseAddr(ip))
	}
	return s
}

// Egress addresses go on and off the veth, IPv4 and IPv6, repeatable without EEXIST; an
// address the agent did not add is never removed, and a restarted agent still knows its own.
func TestEgressAddressesOnVeths(t *testing.T) {
	lab := netns.NewLab(t)
	fw, peer := lab.NS("fw"), lab.NS("peer")
	lab.Link(fw, "vlan104009", []string{"10.3.164.1/22", "fd03::1/64"}, peer, "eth0", []string{"10.3.164.2/22"})
	lab.Addr(fw, "vlan104009", "185.1.2.9/32") // put there by someone else

	h, err := vnetns.GetFromPath("/var/run/netns/" + fw)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	handle, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer handle.Close()
	state := filepath.Join(t.TempDir(), "egress.json")
	e := &EgressAddresses{Handle: handle, StateFile: state}

	want := []model.SNAT{snat("vlan104009", "185.1.2.3", "185.1.2.4", "2001:db8:5::3", "185.1.2.9")}
	for range 2 { // the second run finds everything in place: no EEXIST, no change
		if err := e.Reconcile(want); err != nil {
			t.Fatal(err)
		}
	}
	out := addrs(t, lab, fw, "vlan104009")
	for _, a := range []string{"185.1.2.3/32", "185.1.2.4/32", "2001:db8:5::3/128", "185.1.2.9/32", "10.3.164.1/22"} {
		if !strings.Contains(out, "inet") || !strings.Contains(out, a) {
			t.Errorf("%s missing:\n%s", a, out)
		}
	}

	// A new agent (restart) removes what the previous one added and is no longer wanted.
	e2 := &EgressAddresses{Handle: handle, StateFile: state}
	if err := e2.Reconcile([]model.SNAT{snat("vlan104009", "185.1.2.4")}); err != nil {
		t.Fatal(err)
	}
	out = addrs(t, lab, fw, "vlan104009")
	for _, gone := range []string{"185.1.2.3/32", "2001:db8:5::3/128"} {
		if strings.Contains(out, gone) {
			t.Errorf("%s still there:\n%s", gone, out)
		}
	}
	for _, kept := range []string{"185.1.2.4/32", "185.1.2.9/32", "10.3.164.1/22", "fd03::1/64"} {
		if !strings.Contains(out, kept) {
			t.Errorf("%s removed:\n%s", kept, out)
		}
	}
	if err := e2.Reconcile(nil); err != nil {
		t.Fatal(err)
	}
	if out := addrs(t, lab, fw, "vlan104009"); strings.Contains(out, "185.1.2.4/32") || !strings.Contains(out, "185.1.2.9/32") {
		t.Errorf("after removing all egress rules:\n%s", out)
	}
	// A missing interface is reported and does not stop the others.
	err = e2.Reconcile([]model.SNAT{snat("vlan1", "185.1.3.1"), snat("vlan104009", "185.1.2.5")})
	if err == nil || !strings.Contains(err.Error(), "vlan1") {
		t.Errorf("missing interface: %v", err)
	}
	if out := addrs(t, lab, fw, "vlan104009"); !strings.Contains(out, "185.1.2.5/32") {
		t.Errorf("the existing interface was not done:\n%s", out)
	}
}

const (
	keyA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJ3Nq9bQm8gC7y0l7pG2x7hDqJ0yQeQ3fTqX2YbmW0R alice@example"
	keyB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdmFw8z3o0zj8k8n2R5z6w4W4cV2xq8y1c8F0m3H5hA bob@example"
)

func TestAuthorizedKeysRotationAndRemoval(t *testing.T) {
	file := filepath.Join(t.TempDir(), "home", "metal", ".ssh", "authorized_keys")
	ak := AuthorizedKeys{File: file, User: "root"}
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if changed, err := ak.Write([]string{keyA}); err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	if got := read(); !strings.Contains(got, keyA) {
		t.Fatalf("file:\n%s", got)
	}
	if info, _ := os.Stat(file); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", info.Mode())
	}
	if changed, err := ak.Write([]string{keyA}); err != nil || changed {
		t.Errorf("same keys rewrote the file: %v %v", changed, err)
	}
	// Rotation: B replaces A in place.
	if _, err := ak.Write([]string{keyB}); err != nil {
		t.Fatal(err)
	}
	if got := read(); strings.Contains(got, keyA) || !strings.Contains(got, keyB) {
		t.Errorf("after rotation:\n%s", got)
	}
	// A broken key is left out but does not hold up the removal of A.
	if _, err := ak.Write([]string{"ssh-ed25519 not-base64", keyB}); err == nil || !strings.Contains(err.Error(), "sshPublicKeys[0]") {
		t.Errorf("broken key: %v", err)
	}
	if got := read(); !strings.Contains(got, keyB) || strings.Contains(got, "not-base64") {
		t.Errorf("with a broken key:\n%s", got)
	}
	// The last key can be removed.
	if _, err := ak.Write([]string{}); err != nil {
		t.Fatal(err)
	}
	if got := read(); strings.Contains(got, "ssh-") {
		t.Errorf("after removing the last key:\n%s", got)
	}
}
