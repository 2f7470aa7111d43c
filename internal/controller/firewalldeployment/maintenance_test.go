package firewalldeployment

import "testing"

func TestOSMinorImage(t *testing.T) {
	for _, tc := range []struct {
		image, short string
		qualified    bool
	}{
		{"firewall-ubuntu-3.0.20240503", "firewall-ubuntu-3.0", true},
		{"firewall-ubuntu-3.0", "firewall-ubuntu-3.0", false},
		{"firewall-debian-12.1.20250101", "firewall-debian-12.1", true},
		{"firewall", "firewall", false},
		{"firewall-ubuntu-3", "firewall-ubuntu-3", false},
	} {
		short, qualified := osMinorImage(tc.image)
		if short != tc.short || qualified != tc.qualified {
			t.Errorf("osMinorImage(%q) = %q, %v; want %q, %v", tc.image, short, qualified, tc.short, tc.qualified)
		}
	}
}
