package model

import "slices"

// HostSpec is the part of the Firewall spec the agent realizes on the host rather than in
// nftables: the admin user's SSH keys and the agent binary to run.
type HostSpec struct {
	// SSHPublicKeys become the admin user's authorized_keys; nil leaves the file alone,
	// an empty list removes every key.
	SSHPublicKeys     []string
	ControllerURL     string
	ControllerVersion string
}

// Equal compares two host specs.
func (h HostSpec) Equal(o HostSpec) bool {
	return h.ControllerURL == o.ControllerURL && h.ControllerVersion == o.ControllerVersion &&
		(h.SSHPublicKeys == nil) == (o.SSHPublicKeys == nil) && slices.Equal(h.SSHPublicKeys, o.SSHPublicKeys)
}
