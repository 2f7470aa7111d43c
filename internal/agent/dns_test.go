package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestResolvConfServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("search example.com\nnameserver 10.0.0.53\nnameserver 127.0.0.53\nnameserver fd00::53\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := resolvConfServers(path)
	want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.53:53"), netip.MustParseAddrPort("127.0.0.53:53"), netip.MustParseAddrPort("[fd00::53]:53")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if resolvConfServers(filepath.Join(t.TempDir(), "missing")) != nil {
		t.Error("a missing file gives servers")
	}
}
