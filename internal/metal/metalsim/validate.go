package metalsim

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/palisade-fw/palisade/internal/metal"
)

var sshKeyTypes = []string{
	"ssh-rsa", "ssh-dss", "ssh-ed25519",
	"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
}

// validSSHKey checks the authorized_keys shape: a known type followed by a
// base64 blob whose embedded type name matches. It does not parse the key
// material itself.
func validSSHKey(k string) bool {
	fields := strings.Fields(k)
	if len(fields) < 2 || !slices.Contains(sshKeyTypes, fields[0]) {
		return false
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil || len(blob) < 4 {
		return false
	}
	n := binary.BigEndian.Uint32(blob[:4])
	return uint64(n)+4 <= uint64(len(blob)) && string(blob[4:4+n]) == fields[0]
}

// FakeSSHPublicKey returns a well-formed ssh-ed25519 authorized_keys line
// the simulator accepts; seed varies the key material.
func FakeSSHPublicKey(seed byte, comment string) string {
	blob := binary.BigEndian.AppendUint32(nil, uint32(len("ssh-ed25519")))
	blob = append(blob, "ssh-ed25519"...)
	blob = binary.BigEndian.AppendUint32(blob, 32)
	for i := range 32 {
		blob = append(blob, seed+byte(i))
	}
	return strings.TrimSpace("ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " " + comment)
}

var ruleComment = regexp.MustCompile(`^[a-zA-Z _-]*$`)

// normalizeRules validates firewall rules like metal-api and lowercases the
// protocols (default tcp).
func normalizeRules(in *metal.FirewallRules) (*metal.FirewallRules, error) {
	if in == nil {
		return nil, nil
	}
	out := deepCopy(*in)
	for i := range out.Egress {
		r := &out.Egress[i]
		if err := checkRule(&r.Protocol, r.Ports, r.Comment, r.To); err != nil {
			return nil, fmt.Errorf("egress rule %d: %w", i, err)
		}
	}
	for i := range out.Ingress {
		r := &out.Ingress[i]
		if err := checkRule(&r.Protocol, r.Ports, r.Comment, append(slices.Clone(r.From), r.To...)); err != nil {
			return nil, fmt.Errorf("ingress rule %d: %w", i, err)
		}
	}
	return &out, nil
}

func checkRule(protocol *string, ports []int32, comment string, cidrs []string) error {
	p := strings.ToLower(*protocol)
	if p == "" {
		p = "tcp"
	}
	if p != "tcp" && p != "udp" {
		return fmt.Errorf("protocol %q is not tcp or udp", *protocol)
	}
	*protocol = p
	for _, port := range ports {
		if port < 0 || port > 65535 {
			return fmt.Errorf("port %d out of range", port)
		}
	}
	if len(comment) > 100 || !ruleComment.MatchString(comment) {
		return fmt.Errorf("comment %q may only contain [a-zA-Z _-] and at most 100 characters", comment)
	}
	if len(cidrs) == 0 {
		return fmt.Errorf("no cidrs given")
	}
	var family int
	for _, c := range cidrs {
		pfx, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("invalid cidr %q", c)
		}
		f := 4
		if pfx.Addr().Is6() {
			f = 6
		}
		if family != 0 && f != family {
			return fmt.Errorf("mixed address families in one rule")
		}
		family = f
	}
	return nil
}
