package model

// SourceDefault marks objects the agent contributes itself.
const SourceDefault = "default"

// DefaultEgressKey names the seed's default egress policy; its chain and counter are
// cwnp-<hash>-default-egress, which is how the rule file, the dry-run diff and the
// statistics show it.
var DefaultEgressKey = ObjectKey{Source: SourceDefault, Name: "default-egress"}

// DefaultEgressComment says where the default comes from wherever it shows up.
const DefaultEgressComment = "default egress TCP 443, TCP and UDP 53 (metal-stack v0.6.0: allowed without further configuration); off with nftables.defaultEgress: false"

// DefaultEgress is the egress metal-stack's release notes promise "without further
// configuration": traffic to port 443 and 53 is allowed. On Gardener the provider deploys
// it as policies (allow-to-https, allow-to-dns); an agent user has none, so the agent
// contributes it unless the config switches it off.
//
// NTP (UDP 123) is not part of it: the release notes name only 443 and 53, and Gardener's
// provider opens NTP only towards the partition's own NTP servers (networkIsolation), never
// to every destination. A cluster that syncs time through the firewall says so with a
// policy (egress UDP 123 to its NTP servers).
//
// It is a policy like any other (no to: every destination), so allowedNetworks narrows it
// to the allowed networks.
func DefaultEgress() PolicyInput {
	tcp, udp := "TCP", "UDP"
	port := func(p int32) *int32 { return &p }
	return PolicyInput{Key: DefaultEgressKey, Spec: PolicySpec{
		Description: DefaultEgressComment,
		Egress: []EgressRule{{Ports: []PolicyPort{
			{Protocol: &tcp, Port: port(443)},
			{Protocol: &tcp, Port: port(53)},
			{Protocol: &udp, Port: port(53)},
		}}},
	}}
}

// defaultEgress parses the default policy without the generic notes ("no to: every
// address"): its message says what it is.
func defaultEgress(spec PolicySpec) (Policy, error) {
	p, err := ParsePolicy(DefaultEgressKey, spec)
	if err != nil {
		return Policy{}, err
	}
	p.Notes, p.Comment = []string{DefaultEgressComment}, DefaultEgressComment
	return p, nil
}
