package droplog

import (
	"context"
	"net"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/test/netns"
)

// A TCP SYN that a firewall namespace drops (and logs to the nflog group, as the ruleset
// does) shows up as a JSON line at a receiver that streams the agent's hub.
func TestDroppedPacketArrivesAsJSONLine(t *testing.T) {
	lab := netns.NewLab(t)
	out, fw := lab.NS("out"), lab.NS("fw")
	lab.Link(out, "eth0", []string{"10.77.0.2/24"}, fw, "vrf104009", []string{"10.77.0.1/24"})
	ruleset := `table inet droplogtest {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 4000 counter log prefix "nftables-firewall-dropped: " group 7 drop
	}
}
`
	cmd := exec.Command("ip", "netns", "exec", fw, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, b)
	}

	hub := NewHub(HubOptions{Firewall: "fw-test"})
	srv := httptest.NewServer(hub)
	defer srv.Close() // after cancel: the stream ends with the follower
	r := &Reader{Group: 7, NetNS: "/var/run/netns/" + fw, Hub: hub}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	readerDone := make(chan error, 1)
	go func() { readerDone <- r.Run(ctx) }()

	sink := &syncBuffer{}
	go (&Follower{URL: srv.URL, Printer: &Printer{W: sink}}).Run(ctx)

	// Keep knocking until a line arrives: the reader binds the group asynchronously.
	deadline := time.Now().Add(60 * time.Second)
	for len(sink.lines()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no JSON line for the dropped packet")
		}
		select {
		case err := <-readerDone:
			t.Fatalf("reader stopped: %v", err)
		default:
		}
		_ = netns.Do(out, func() error {
			c, err := net.DialTimeout("tcp", "10.77.0.1:4000", 300*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return nil
		})
	}
	line := sink.lines()[0]
	want := map[string]string{"ACTION": "Drop", "SRC": "10.77.0.2", "DST": "10.77.0.1", "DPT": "4000", "PROTO": "TCP",
		"IN": "vrf104009", "SYN": "", "firewall": "fw-test"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %q (line %v)", k, line[k], v, line)
		}
	}
	if line["SPT"] == "" || line["TTL"] != "64" || line["timestamp"] == "" {
		t.Errorf("line %v", line)
	}
}
