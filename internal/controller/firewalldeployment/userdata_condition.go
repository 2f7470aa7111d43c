package firewalldeployment

import v2 "github.com/palisade-fw/palisade/api/v2"

// userdataReady is the reason and message of a True UserdataReady condition. Empty userdata is
// legal (the machine boots without an agent configuration) but is said as such, so that a
// deployment that expected defaulted userdata does not read as "rendered".
func userdataReady(rendered string) (reason, message string) {
	if rendered == "" {
		return v2.ReasonUserdataEmpty, "no userdata: neither userdata nor userdataContents is set, the machine is allocated without userdata"
	}
	return v2.ReasonUserdataRendered, "userdata rendered"
}
