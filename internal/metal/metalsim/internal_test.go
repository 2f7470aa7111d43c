package metalsim

import (
	"strings"
	"testing"
	"time"

	"github.com/metal-stack/security"

	"github.com/palisade-fw/palisade/internal/metal"
)

func TestResolveImage(t *testing.T) {
	st := &state{images: []Image{
		{ID: "firewall-ubuntu-3.0.20240201"}, {ID: "firewall-ubuntu-3.0.20240503"},
		{ID: "firewall-ubuntu-3.1.20240101"}, {ID: "ubuntu-24.4.20240601"},
	}}
	tests := map[string]string{
		"firewall-ubuntu-3.0":          "firewall-ubuntu-3.0.20240503",
		"firewall-ubuntu-3.0.0":        "firewall-ubuntu-3.0.20240503",
		"firewall-ubuntu-3.0.20240201": "firewall-ubuntu-3.0.20240201",
		"firewall-ubuntu-3.1":          "firewall-ubuntu-3.1.20240101",
		"firewall-ubuntu-3.0.1":        "",
		"firewall-ubuntu-4.0":          "",
		"firewall-3.0":                 "",
		"garbage":                      "",
	}
	for id, want := range tests {
		img, ok := st.resolveImage(id)
		got := ""
		if ok {
			got = img.ID
		}
		if got != want {
			t.Errorf("resolveImage(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestFSMRules(t *testing.T) {
	st := &state{prov: DefaultProvisioning()}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &machine{}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for i, ev := range []string{metal.EventPXEBooting, metal.EventPreparing, metal.EventRegistering, metal.EventWaiting,
		metal.EventInstalling, metal.EventBootingNewKernel, metal.EventPhonedHome} {
		st.applyEvent(m, ev, "", at(i))
	}
	if m.crashLoop || m.lastErrorEvent != nil || !m.waiting {
		t.Fatalf("valid sequence flagged: crash=%v err=%+v", m.crashLoop, m.lastErrorEvent)
	}
	st.applyEvent(m, metal.EventPhonedHome, "", at(30))
	if len(m.events) != 7 || !m.lastEventTime.Equal(at(30)) {
		t.Fatalf("repeated Phoned Home must only refresh the time: %d events", len(m.events))
	}
	st.applyEvent(m, metal.EventPXEBooting, "", at(40))
	if !m.crashLoop || m.lastErrorEvent == nil || !strings.HasPrefix(m.events[len(m.events)-1].Message, "[unexpectedly received in Phoned Home]") {
		t.Fatalf("unexpected PXE Booting: crash=%v last=%+v", m.crashLoop, m.events[len(m.events)-1])
	}
	st.applyEvent(m, metal.EventMachineReclaim, "", at(50))
	if m.crashLoop {
		t.Fatal("Machine Reclaim must clear crash_loop")
	}
	st.applyEvent(m, metal.EventPhonedHome, "", at(50).Add(st.prov.FailedReclaimAfter.Duration+time.Second))
	if !m.failedReclaim {
		t.Fatal("late Phoned Home after reclaim must set failed_machine_reclaim")
	}
	st.applyEvent(m, metal.EventPXEBooting, "", at(1000))
	if m.failedReclaim {
		t.Fatal("PXE Booting must clear failed_machine_reclaim")
	}
	n := len(m.events)
	st.applyEvent(m, metal.EventAlive, "", at(1001))
	if len(m.events) != n || !m.lastEventTime.Equal(at(1001)) {
		t.Fatal("Alive must only update the time")
	}
	for i := range 150 {
		st.applyEvent(m, metal.EventPlannedReboot, "", at(2000+i))
	}
	if len(m.events) != maxStoredEvents {
		t.Fatalf("stored %d events, want cap %d", len(m.events), maxStoredEvents)
	}
}

func TestIPAllocatorSkipsNetworkAndBroadcast(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Networks = []Network{{ID: "tiny", Prefixes: []string{"192.0.2.0/30"}}}
	cfg.Machines = nil
	st, err := newState(cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	n := st.networks["tiny"]
	var got []string
	for i := range 3 {
		ip, err := st.acquireIP(n, "m")
		if err != nil {
			if i != 2 {
				t.Fatalf("acquire %d: %v", i, err)
			}
			break
		}
		got = append(got, ip)
	}
	if strings.Join(got, ",") != "192.0.2.1,192.0.2.2" {
		t.Fatalf("acquired %v", got)
	}
	st.releaseIPs("m")
	if len(n.used) != 0 {
		t.Fatal("release left ips")
	}
}

// Vectors from integration-and-metal-api.md section C2; the last case signs
// with metal-stack/security, which metal-go uses, and verifies here.
func TestHMACSignatureMatchesUpstreamVectors(t *testing.T) {
	tests := []struct {
		name               string
		key                []byte
		date, method, salt string
		want               string
	}{
		{
			name: "upstream mac_test.go", key: []byte{1, 2, 3},
			date: "2019-01-16T14:44:45Z", method: "GET", salt: string([]byte{1, 2, 3, 4, 5, 6}),
			want: "f8d293a06bdde899a5bd1dd61b13842564650c717c742db02c4e1a888fc22501",
		},
		{
			name: "reference second vector", key: []byte("must-be-changed"),
			date: "2024-01-02T03:04:05Z", method: "POST", salt: "abcdefghijklmnopqrstuvwx",
			want: "cd91bc752e9a06ff105e5e828f5158713de425cfd579fc2a1bbfe7de6aa96fe9",
		},
	}
	signer := security.NewHMACAuth(metal.AuthTypeView, []byte("k"))
	signed := signer.AuthHeaders("POST", time.Date(2024, 1, 2, 3, 4, 5, 999, time.FixedZone("X", 3600)))
	if signed[headerDate] != "2024-01-02T02:04:05Z" {
		t.Errorf("X-Date = %q, want UTC at second precision", signed[headerDate])
	}
	scheme, mac, _ := strings.Cut(signed[headerAuthorization], " ")
	if scheme != metal.AuthTypeView || !validHMAC([]byte("k"), signed[headerDate], "POST", signed[headerSalt], mac) {
		t.Errorf("metal-go's signature %v does not verify", signed)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hmacSignature(tt.key, tt.date, tt.method, tt.salt); got != tt.want {
				t.Fatalf("hmacSignature = %s, want %s", got, tt.want)
			}
			if got := hmacSignature(tt.key, tt.date, strings.ToLower(tt.method), tt.salt); got != tt.want {
				t.Fatalf("method must be upper-cased before signing, got %s", got)
			}
			if !validHMAC(tt.key, tt.date, tt.method, tt.salt, tt.want) {
				t.Fatal("validHMAC rejected the vector")
			}
			if validHMAC(tt.key, tt.date, tt.method, tt.salt+"x", tt.want) {
				t.Fatal("validHMAC accepted a different salt")
			}
		})
	}
}
