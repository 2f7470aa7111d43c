package nft

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

// scratch is a throwaway network namespace with an nft wrapper that runs every nft call
// inside it and counts the calls.
type scratch struct {
	ns    string
	calls string // file with one line per nft call
}

func requireNFT(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for network namespaces and nft")
	}
	for _, bin := range []string{"nft", "ip", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: %s is not installed", bin)
		}
	}
}

// newScratch creates the namespace and returns a knftables interface bound to it.
func newScratch(t testing.TB, table string) (*scratch, knftables.Interface) {
	t.Helper()
	requireNFT(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	s := &scratch{ns: "palnft" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", s.ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", s.ns).Run() })

	nftPath, err := exec.LookPath("nft")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s.calls = filepath.Join(dir, "calls")
	script := fmt.Sprintf("#!/bin/sh\necho x >> %q\nexec ip netns exec %q %q \"$@\"\n", s.calls, s.ns, nftPath)
	if err := os.WriteFile(filepath.Join(dir, "nft"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// knftables resolves nft once, in New; the PATH change is needed only for that call.
	oldPath := os.Getenv("PATH")
	os.Setenv("PATH", dir+string(os.PathListSeparator)+oldPath)
	iface, err := knftables.New(knftables.InetFamily, table)
	os.Setenv("PATH", oldPath)
	if err != nil {
		t.Fatal(err)
	}
	return s, iface
}

// Calls returns how many times nft ran so far.
func (s *scratch) Calls(t testing.TB) int {
	data, err := os.ReadFile(s.calls)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

// List returns the table as nft lists it, without counter values unless stateful.
func (s *scratch) List(t testing.TB, table string, stateful bool) string {
	t.Helper()
	args := []string{"netns", "exec", s.ns, "nft"}
	if !stateful {
		args = append(args, "-s")
	}
	out, err := exec.Command("ip", append(args, "list", "table", "inet", table)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v %s", err, out)
	}
	return string(out)
}

// Exec runs a command in the namespace.
func (s *scratch) Exec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", s.ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v %s", args, err, out)
	}
	return string(out)
}

// Netlink lists the table inside the namespace.
func (s *scratch) Netlink(t testing.TB, table string) *Netlink {
	t.Helper()
	l, err := NewNetlink(table, "/var/run/netns/"+s.ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}
