package nft

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"

	"github.com/palisade-fw/palisade/internal/testenv/ci"
)

// scratch is a throwaway network namespace.
type scratch struct {
	ns string
}

func requireNFT(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		ci.SkipOutsideCI(t, "skipping: needs root for network namespaces and nft")
	}
	for _, bin := range []string{"nft", "ip", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			ci.SkipOutsideCI(t, "skipping: "+bin+" is not installed")
		}
	}
}

// newScratch creates the namespace and returns the kernel path into it.
func newScratch(t testing.TB, table string) (*scratch, *Netlink) {
	t.Helper()
	requireNFT(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	s := &scratch{ns: "palnft" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", s.ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", s.ns).Run() })
	return s, s.Netlink(t, table)
}

// counting wraps a Kernel and counts commits.
type counting struct {
	Kernel
	commits int
}

func (c *counting) Commit(ctx context.Context, b *Batch) error {
	c.commits++
	return c.Kernel.Commit(ctx, b)
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

// Netlink is the kernel path into the namespace.
func (s *scratch) Netlink(t testing.TB, table string) *Netlink {
	t.Helper()
	l, err := NewNetlink(table, "/var/run/netns/"+s.ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}
