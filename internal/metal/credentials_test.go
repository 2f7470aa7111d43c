package metal_test

import (
	"context"
	"strings"
	"testing"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

// TestCredentialsPerPurpose: reads sign with the View key, allocate and
// free with Edit, machine update with Admin, each from its own key when
// given; one key alone still signs everything.
func TestCredentialsPerPurpose(t *testing.T) {
	keys := metalsim.DefaultConfig().HMACKeys
	view := &metal.Credential{HMACKey: keys[metal.AuthTypeView]}
	edit := &metal.Credential{HMACKey: keys[metal.AuthTypeEdit]}
	admin := &metal.Credential{HMACKey: keys[metal.AuthTypeAdmin]}
	const v, e, a = metal.AuthTypeView, metal.AuthTypeEdit, metal.AuthTypeAdmin
	tests := []struct {
		name string
		cfg  func(*metal.Config)
		// want maps operation to the auth type the simulator saw.
		want map[string]string
	}{
		{
			name: "one admin key for everything (the old setup)",
			cfg:  func(c *metal.Config) { c.HMACKey, c.HMACAuthType = keys[a], a },
			want: map[string]string{metal.OpFirewallFind: a, metal.OpImageLatest: a, metal.OpFirewallAllocate: a, metal.OpMachineUpdate: a, metal.OpMachineFree: a},
		},
		{
			name: "view key beside the admin key",
			cfg:  func(c *metal.Config) { c.HMACKey, c.HMACAuthType, c.View = keys[a], a, view },
			want: map[string]string{metal.OpFirewallFind: v, metal.OpImageLatest: v, metal.OpFirewallAllocate: a, metal.OpMachineUpdate: a, metal.OpMachineFree: a},
		},
		{
			name: "three keys, no default",
			cfg:  func(c *metal.Config) { c.View, c.Edit, c.Admin = view, edit, admin },
			want: map[string]string{metal.OpFirewallFind: v, metal.OpImageLatest: v, metal.OpFirewallAllocate: e, metal.OpMachineUpdate: a, metal.OpMachineFree: e},
		},
		{
			name: "edit key serves reads before the stronger default",
			cfg:  func(c *metal.Config) { c.HMACKey, c.HMACAuthType, c.Edit = keys[a], a, edit },
			want: map[string]string{metal.OpFirewallFind: e, metal.OpImageLatest: e, metal.OpFirewallAllocate: e, metal.OpMachineUpdate: a, metal.OpMachineFree: e},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			c := env.client(metal.AuthTypeView, func(c *metal.Config) {
				c.HMACKey, c.HMACAuthType = "", ""
				tt.cfg(c)
			})
			ctx := context.Background()
			fw, err := c.AllocateFirewall(ctx, firewallRequest("fw-purpose"))
			mustNoErr(t, err)
			_, err = c.FindFirewalls(ctx, &metal.FirewallFindRequest{AllocationName: "fw-purpose"})
			mustNoErr(t, err)
			_, err = c.GetLatestImage(ctx, metalsim.DefaultImageShorthand)
			mustNoErr(t, err)
			_, err = c.UpdateMachine(ctx, &metal.MachineUpdateRequest{ID: fw.ID, Tags: []string{"a=b"}})
			mustNoErr(t, err)
			_, err = c.FreeMachine(ctx, fw.ID)
			mustNoErr(t, err)
			got := map[string]string{}
			for _, r := range env.sim.Requests() {
				got[r.Op] = r.AuthType
				if r.Status != 200 {
					t.Errorf("%s answered %d", r.Op, r.Status)
				}
			}
			for op, want := range tt.want {
				if got[op] != want {
					t.Errorf("%s signed as %q, want %q", op, got[op], want)
				}
			}
		})
	}
}

func TestPerPurposeConfigValidatedAndRedacted(t *testing.T) {
	cfg := metal.Config{
		URL: "http://x", HMACKey: "secret-default", HMACAuthType: metal.AuthTypeAdmin,
		View: &metal.Credential{HMACKey: "secret-view"}, Edit: &metal.Credential{BearerToken: "secret-token"},
	}
	s := cfg.String()
	if strings.Contains(s, "secret") || !strings.Contains(s, "view:hmac(Metal-View)") || !strings.Contains(s, "edit:bearer") {
		t.Errorf("String() = %s", s)
	}
	cfg.View.HMACAuthType = "Metal-Root"
	if _, err := metal.New(cfg); err == nil {
		t.Error("unknown auth type of the view credential accepted")
	}
}
