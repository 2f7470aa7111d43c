package droplog

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// Headers as the kernel hands them over (captured with tcpdump -x, checksums left as is).
const (
	// 2.3.4.5:38464 -> 1.2.3.4:4000 TCP SYN, TTL 236, ID 54321, window 65535
	tcpSYN4 = "45000028d4310000ec06000002030405010203049640 0fa000000000000000005002ffff00000000"
	// fd99::2:5353 -> fd01::10:53 UDP, hop limit 63
	udp6 = "6000000000101140fd990000000000000000000000000002fd010000000000000000000000000010" + "14e9003500100000" + "0000000000000000"
	// 10.99.0.2 -> 10.1.0.10 ICMP echo request
	icmp4 = "4500001c000140004001000a0a6300020a01000a" + "0800f7ff00000000"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFields(t *testing.T) {
	ts := time.Date(2020, 6, 17, 13, 23, 27, 0, time.UTC)
	cases := []struct {
		name   string
		p      Packet
		want   map[string]string
		absent []string
		err    bool
	}{
		{
			name: "dropped IPv4 TCP SYN as seed 003 shows it",
			p: Packet{Prefix: PrefixDropped, Payload: mustHex(t, tcpSYN4), In: "vrf104009", Out: "vlan179", Time: ts,
				HwHeader: mustHex(t, "ca41f980fa89aabb0e628ca60800")},
			want: map[string]string{"ACTION": "Drop", "SRC": "2.3.4.5", "DST": "1.2.3.4", "SPT": "38464", "DPT": "4000",
				"PROTO": "TCP", "IN": "vrf104009", "OUT": "vlan179", "LEN": "40", "TTL": "236", "ID": "54321",
				"TOS": "0x00", "PREC": "0x00", "WINDOW": "65535", "RES": "0x00", "URGP": "0", "SYN": "",
				"MAC": "ca:41:f9:80:fa:89:aa:bb:0e:62:8c:a6:08:00", "timestamp": "2020-06-17 13:23:27 +0000 UTC"},
			absent: []string{"ACK", "DF"},
		},
		{
			name: "accepted IPv6 UDP",
			p:    Packet{Prefix: PrefixAccepted, Payload: mustHex(t, udp6), In: "vlan99"},
			want: map[string]string{"ACTION": "Accept", "SRC": "fd99::2", "DST": "fd01::10", "SPT": "5353", "DPT": "53",
				"PROTO": "UDP", "LEN": "56", "HOPLIMIT": "64", "IN": "vlan99", "OUT": ""},
		},
		{
			name: "ICMP echo",
			p:    Packet{Prefix: PrefixDropped, Payload: mustHex(t, icmp4)},
			want: map[string]string{"PROTO": "ICMP", "TYPE": "8", "CODE": "0", "DF": "", "SRC": "10.99.0.2"},
		},
		{name: "empty payload", p: Packet{Prefix: PrefixDropped}, err: true},
		{name: "truncated IPv4", p: Packet{Payload: []byte{0x45, 0, 0}}, err: true},
		{name: "not IP", p: Packet{Payload: []byte{0x10, 0, 0, 0}}, err: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Fields(c.p)
			if (err != nil) != c.err {
				t.Fatalf("err %v", err)
			}
			for k, v := range c.want {
				if got, ok := f[k]; !ok || got != v {
					t.Errorf("%s = %q (present %v), want %q", k, got, ok, v)
				}
			}
			for _, k := range c.absent {
				if _, ok := f[k]; ok {
					t.Errorf("%s should be absent", k)
				}
			}
		})
	}
}
