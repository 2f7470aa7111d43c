package metal_test

import (
	"context"
	"slices"
	"testing"

	"github.com/palisade-fw/palisade/internal/metal"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
)

// TestEveryCallAgainstSimulator exercises each Client method over real HTTP.
func TestEveryCallAgainstSimulator(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	edit := e.client(metal.AuthTypeEdit)
	admin := e.client(metal.AuthTypeAdmin)
	var c metal.Client = edit // the interface the controllers use

	req := firewallRequest("fw-1")
	req.FirewallRules = &metal.FirewallRules{
		Egress:  []metal.FirewallEgressRule{{Protocol: "TCP", Ports: []int32{443}, To: []string{"0.0.0.0/0"}, Comment: "https out"}},
		Ingress: []metal.FirewallIngressRule{{Protocol: "UDP", Ports: []int32{53}, From: []string{"10.0.0.0/8"}}},
	}
	fw, err := c.AllocateFirewall(ctx, req)
	mustNoErr(t, err)
	a := fw.Allocation
	if a == nil || a.Hostname != "fw-1" || a.Name != "fw-1" || a.Project != metalsim.DefaultProject || a.Role != metal.RoleFirewall {
		t.Fatalf("allocation = %+v", a)
	}
	if a.Image == nil || a.Image.ID != metalsim.DefaultImage {
		t.Fatalf("image shorthand not resolved to latest: %+v", a.Image)
	}
	if a.UserData != req.UserData || !slices.Equal(a.SSHPubKeys, req.SSHPubKeys) || a.Creator != "metal-edit@metal-stack.io" || a.AllocationUUID == "" {
		t.Errorf("allocation fields not stored: %+v", a)
	}
	if a.FirewallRules.Egress[0].Protocol != "tcp" || a.FirewallRules.Ingress[0].Protocol != "udp" {
		t.Errorf("rule protocols not lowercased: %+v", a.FirewallRules)
	}
	nets := map[string]metal.MachineNetwork{}
	for _, n := range a.Networks {
		nets[n.NetworkID] = n
		if len(n.IPs) != 1 {
			t.Errorf("network %s got ips %v", n.NetworkID, n.IPs)
		}
	}
	if nets[metalsim.DefaultUnderlayNetwork].NetworkType != metal.NetworkTypeUnderlay ||
		nets[metalsim.DefaultPrivateNetwork].NetworkType != metal.NetworkTypePrivatePrimaryUnshared ||
		nets[metalsim.DefaultExternalNetwork].NetworkType != metal.NetworkTypeExternal {
		t.Errorf("networks = %+v (underlay must be added automatically)", a.Networks)
	}
	if !slices.Contains(fw.Tags, clusterTag) || !slices.ContainsFunc(fw.Tags, func(s string) bool { return len(s) > len(metal.TagRack) && s[:len(metal.TagRack)] == metal.TagRack }) {
		t.Errorf("tags = %v, want user tags plus system labels", fw.Tags)
	}
	if fw.Events.Log[0].Event != metal.EventWaiting || fw.Liveliness != metal.LivelinessAlive {
		t.Errorf("fresh allocation shows %q/%q, want the pool history", fw.Events.Log[0].Event, fw.Liveliness)
	}

	found, err := c.FindFirewalls(ctx, &metal.FirewallFindRequest{AllocationName: "fw-1", AllocationProject: metalsim.DefaultProject, Tags: []string{clusterTag}})
	mustNoErr(t, err)
	if len(found) != 1 || found[0].ID != fw.ID {
		t.Fatalf("FindFirewalls = %d results", len(found))
	}
	none, err := c.FindFirewalls(ctx, &metal.FirewallFindRequest{AllocationName: "fw-1", Tags: []string{"other=tag"}})
	mustNoErr(t, err)
	if none == nil || len(none) != 0 {
		t.Fatalf("non-matching find = %v, want empty non-nil", none)
	}

	got, err := c.GetFirewall(ctx, fw.ID)
	mustNoErr(t, err)
	if got.ID != fw.ID || got.Events.Log[0].Event != metal.EventInstalling {
		t.Errorf("GetFirewall: id %s, last event %q, want Installing", got.ID, got.Events.Log[0].Event)
	}
	m, err := c.GetMachine(ctx, fw.ID)
	mustNoErr(t, err)
	if m.Allocation == nil {
		t.Error("GetMachine lost the allocation")
	}
	free, err := c.FindMachines(ctx, &metal.MachineFindRequest{PartitionID: metalsim.DefaultPartition, SizeID: metalsim.DefaultSize})
	mustNoErr(t, err)
	if len(free) != metalsim.DefaultPoolSize {
		t.Errorf("FindMachines = %d, want %d", len(free), metalsim.DefaultPoolSize)
	}

	desc := "synced"
	newKey := metalsim.FakeSSHPublicKey(9, "rotated")
	upd, err := admin.UpdateMachine(ctx, &metal.MachineUpdateRequest{ID: fw.ID, Description: &desc, Tags: []string{clusterTag, "new=tag"}, SSHPubKeys: []string{newKey}})
	mustNoErr(t, err)
	if !slices.Contains(upd.Tags, "new=tag") || slices.Contains(upd.Tags, "firewall.metal-stack.io/managed-by=palisade") ||
		!slices.ContainsFunc(upd.Tags, func(s string) bool {
			return len(s) > len(metal.TagChassis) && s[:len(metal.TagChassis)] == metal.TagChassis
		}) {
		t.Errorf("tags after update = %v: want replaced user tags plus system labels", upd.Tags)
	}
	if upd.Allocation.Description != desc || !slices.Equal(upd.Allocation.SSHPubKeys, []string{newKey}) {
		t.Errorf("update not applied: %+v", upd.Allocation)
	}

	e.advance(10 * e.cfg.Provisioning.Installing.Duration)
	got, err = c.GetFirewall(ctx, fw.ID)
	mustNoErr(t, err)
	if got.Events.Log[0].Event != metal.EventPhonedHome || got.Liveliness != metal.LivelinessAlive || got.Events.CrashLoop {
		t.Fatalf("after install: last %q, liveliness %q", got.Events.Log[0].Event, got.Liveliness)
	}

	re, err := c.ReinstallMachine(ctx, &metal.MachineReinstallRequest{ID: fw.ID, ImageID: "firewall-ubuntu-3.0.20240201"})
	mustNoErr(t, err)
	if !re.Allocation.Reinstall || re.Allocation.Image.ID != "firewall-ubuntu-3.0.20240201" || re.Events.Log[0].Event != metal.EventPlannedReboot {
		t.Errorf("reinstall: %+v, last event %q", re.Allocation, re.Events.Log[0].Event)
	}

	freed, err := c.FreeMachine(ctx, fw.ID)
	mustNoErr(t, err)
	if freed.Allocation != nil || len(freed.Tags) != 0 {
		t.Errorf("free returned allocation %v, tags %v", freed.Allocation, freed.Tags)
	}
	if _, err := c.GetFirewall(ctx, fw.ID); !metal.IsNotFound(err) {
		t.Errorf("GetFirewall after free: %v, want 404", err)
	}
	if ips := e.sim.UsedIPs(metalsim.DefaultPrivateNetwork); len(ips) != 0 {
		t.Errorf("ips leaked after free: %v", ips)
	}

	img, err := c.GetImage(ctx, metalsim.DefaultImage)
	mustNoErr(t, err)
	if img.ID != metalsim.DefaultImage || img.ExpirationDate.IsZero() {
		t.Errorf("GetImage = %+v", img)
	}
	if _, err := c.GetImage(ctx, metalsim.DefaultImageShorthand); !metal.IsNotFound(err) {
		t.Errorf("GetImage must be exact, got %v", err)
	}
	latest, err := c.GetLatestImage(ctx, metalsim.DefaultImageShorthand)
	mustNoErr(t, err)
	if latest.ID != metalsim.DefaultImage {
		t.Errorf("GetLatestImage = %s", latest.ID)
	}
	imgs, err := c.FindImages(ctx, &metal.ImageFindRequest{Features: []string{metal.ImageFeatureFirewall}})
	mustNoErr(t, err)
	if len(imgs) != 3 {
		t.Errorf("FindImages(firewall) = %d, want 3", len(imgs))
	}

	n, err := c.GetNetwork(ctx, metalsim.DefaultExternalNetwork)
	mustNoErr(t, err)
	// NetworkResponse.networktype is newer than metal-go v0.42.5 (see notInMetalGo).
	if !n.NAT || n.DestinationPrefixes[0] != "0.0.0.0/0" || n.Labels == nil {
		t.Errorf("GetNetwork = %+v", n)
	}
	ns, err := c.FindNetworks(ctx, &metal.NetworkFindRequest{ProjectID: metalsim.DefaultProject, PartitionID: metalsim.DefaultPartition})
	mustNoErr(t, err)
	if len(ns) != 2 { // tenant-network-1 and the DMZ
		t.Errorf("FindNetworks = %d, want 2", len(ns))
	}

	sz, err := c.GetSize(ctx, metalsim.DefaultSize)
	mustNoErr(t, err)
	if sz.ID != metalsim.DefaultSize || len(sz.Constraints) == 0 {
		t.Errorf("GetSize = %+v", sz)
	}
	p, err := c.GetPartition(ctx, metalsim.DefaultPartition)
	mustNoErr(t, err)
	if p.ID != metalsim.DefaultPartition || len(p.DNSServers) == 0 {
		t.Errorf("GetPartition = %+v", p)
	}
	pr, err := c.GetProject(ctx, metalsim.DefaultProject)
	mustNoErr(t, err)
	if pr.Meta == nil || pr.Meta.ID != metalsim.DefaultProject {
		t.Errorf("GetProject = %+v", pr)
	}

	counts := e.sim.RequestCounts()
	for _, op := range []string{metal.OpFirewallAllocate, metal.OpFirewallFind, metal.OpFirewallGet, metal.OpMachineGet,
		metal.OpMachineFind, metal.OpMachineUpdate, metal.OpMachineFree, metal.OpMachineReinstall, metal.OpImageGet,
		metal.OpImageLatest, metal.OpImageFind, metal.OpNetworkGet, metal.OpNetworkFind, metal.OpSizeGet,
		metal.OpPartitionGet, metal.OpProjectGet} {
		if counts[op] == 0 {
			t.Errorf("simulator saw no %s request", op)
		}
	}
}

// The lost-response scenario: allocate answers 500 although the machine
// was allocated; a caller that then searches by name, project and tags
// finds exactly that machine instead of allocating twice.
func TestLostAllocateResponseIsFoundAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(metal.AuthTypeEdit)
	e.sim.Faults().LoseNextAllocateResponse(1)

	_, err := c.AllocateFirewall(ctx, firewallRequest("fw-lost"))
	if !metal.IsServerError(err) {
		t.Fatalf("allocate err = %v, want a 500", err)
	}
	if n := e.sim.RequestCount(metal.OpFirewallAllocate); n != 1 {
		t.Fatalf("allocate sent %d times; it must never be retried", n)
	}
	found, err := c.FindFirewalls(ctx, &metal.FirewallFindRequest{
		AllocationName: "fw-lost", AllocationProject: metalsim.DefaultProject, Tags: []string{clusterTag},
	})
	mustNoErr(t, err)
	if len(found) != 1 {
		t.Fatalf("found %d firewalls, want exactly the lost one", len(found))
	}
	var allocated []metalsim.MachineSnapshot
	for _, m := range e.sim.Machines() {
		if m.Allocation != nil {
			allocated = append(allocated, m)
		}
	}
	if len(allocated) != 1 || allocated[0].ID != found[0].ID {
		t.Fatalf("server-side allocations = %d, want only the found one", len(allocated))
	}
	tl := e.sim.Timeline()
	if len(tl) != 1 || tl[0].Kind != metalsim.TimelineAllocated || tl[0].Note != "response lost" {
		t.Errorf("timeline = %+v", tl)
	}
}
