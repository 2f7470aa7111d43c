// Package droplog turns the packets the ruleset logs (drops, and accepted connections with
// logAcceptedConnections) into JSON lines: the kernel hands them to an nflog group, the
// Reader takes them from there, and the Hub keeps the recent lines for the receivers in the
// workload cluster (cmd/droptailer) that stream them over HTTP and print them, so that
// `kubectl logs` and `stern -n firewall drop` show them. Lines that cannot be delivered are
// counted, never lost silently.
package droplog

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Prefixes the ruleset logs with; the part before ":" names the action.
const (
	PrefixDropped  = "nftables-firewall-dropped: "
	PrefixAccepted = "nftables-firewall-accepted: "
)

// Packet is what the kernel handed over for one logged packet.
type Packet struct {
	Prefix   string
	Payload  []byte // the network header onwards
	In, Out  string // interface names
	HwHeader []byte // the link-layer header of the incoming packet
	Time     time.Time
}

// Fields turns a logged packet into the key-value pairs the droptailer always printed
// (SRC, DST, PROTO, SPT, DPT, IN, OUT, LEN, TTL, ...; flags such as SYN map to "").
func Fields(p Packet) (map[string]string, error) {
	f := map[string]string{"ACTION": action(p.Prefix), "IN": p.In, "OUT": p.Out}
	if len(p.HwHeader) > 0 {
		f["MAC"] = hexColon(p.HwHeader)
	}
	if !p.Time.IsZero() {
		f["timestamp"] = p.Time.UTC().Format("2006-01-02 15:04:05 -0700 MST")
	}
	if len(p.Payload) == 0 {
		return f, fmt.Errorf("no packet payload")
	}
	var proto uint8
	var l4 []byte
	switch p.Payload[0] >> 4 {
	case 4:
		b := p.Payload
		ihl := int(b[0]&0x0f) * 4
		if len(b) < 20 || ihl < 20 || len(b) < ihl {
			return f, fmt.Errorf("truncated IPv4 header")
		}
		src, _ := netip.AddrFromSlice(b[12:16])
		dst, _ := netip.AddrFromSlice(b[16:20])
		tos := b[1]
		f["SRC"], f["DST"] = src.String(), dst.String()
		f["LEN"] = strconv.Itoa(int(binary.BigEndian.Uint16(b[2:4])))
		f["TOS"] = fmt.Sprintf("0x%02X", tos&0x1e)
		f["PREC"] = fmt.Sprintf("0x%02X", tos&0xe0)
		f["TTL"] = strconv.Itoa(int(b[8]))
		f["ID"] = strconv.Itoa(int(binary.BigEndian.Uint16(b[4:6])))
		if frag := binary.BigEndian.Uint16(b[6:8]); frag&0x4000 != 0 {
			f["DF"] = ""
		}
		proto, l4 = b[9], b[ihl:]
	case 6:
		b := p.Payload
		if len(b) < 40 {
			return f, fmt.Errorf("truncated IPv6 header")
		}
		src, _ := netip.AddrFromSlice(b[8:24])
		dst, _ := netip.AddrFromSlice(b[24:40])
		f["SRC"], f["DST"] = src.String(), dst.String()
		f["LEN"] = strconv.Itoa(int(binary.BigEndian.Uint16(b[4:6])) + 40)
		f["TC"] = strconv.Itoa(int(binary.BigEndian.Uint16(b[0:2])>>4) & 0xff)
		f["HOPLIMIT"] = strconv.Itoa(int(b[7]))
		f["FLOWLBL"] = strconv.Itoa(int(binary.BigEndian.Uint32(b[0:4]) & 0xfffff))
		// Extension headers are not followed: the transport fields then stay empty.
		proto, l4 = b[6], b[40:]
	default:
		return f, fmt.Errorf("not an IP packet (version %d)", p.Payload[0]>>4)
	}
	transport(f, proto, l4)
	return f, nil
}

func transport(f map[string]string, proto uint8, b []byte) {
	switch proto {
	case 6:
		f["PROTO"] = "TCP"
		if len(b) < 20 {
			return
		}
		f["SPT"] = strconv.Itoa(int(binary.BigEndian.Uint16(b[0:2])))
		f["DPT"] = strconv.Itoa(int(binary.BigEndian.Uint16(b[2:4])))
		f["WINDOW"] = strconv.Itoa(int(binary.BigEndian.Uint16(b[14:16])))
		f["RES"] = fmt.Sprintf("0x%02X", b[12]&0x0f)
		f["URGP"] = strconv.Itoa(int(binary.BigEndian.Uint16(b[18:20])))
		for bit, name := range []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG"} {
			if b[13]&(1<<bit) != 0 {
				f[name] = ""
			}
		}
	case 17:
		f["PROTO"] = "UDP"
		if len(b) < 8 {
			return
		}
		f["SPT"] = strconv.Itoa(int(binary.BigEndian.Uint16(b[0:2])))
		f["DPT"] = strconv.Itoa(int(binary.BigEndian.Uint16(b[2:4])))
	case 1, 58:
		f["PROTO"] = "ICMP"
		if proto == 58 {
			f["PROTO"] = "ICMPv6"
		}
		if len(b) < 2 {
			return
		}
		f["TYPE"], f["CODE"] = strconv.Itoa(int(b[0])), strconv.Itoa(int(b[1]))
	default:
		f["PROTO"] = strconv.Itoa(int(proto))
	}
}

// action names the verdict from the log prefix: "nftables-firewall-dropped: " is Drop.
func action(prefix string) string {
	switch {
	case strings.Contains(prefix, "dropped"):
		return "Drop"
	case strings.Contains(prefix, "accepted"):
		return "Accept"
	}
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(prefix), ":"))
}

func hexColon(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}
