package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/metal"
)

// reconcileMachine finds the firewall's machine, allocates one when there is none, and reads
// its state into the status. A paused firewall only reads and reports.
func (r *Reconciler) reconcileMachine(ctx context.Context, fw *v2.Firewall, paused bool) (ctrl.Result, error) {
	userdata, hash, renderErr := r.Userdata.Render(ctx, fw.Namespace, &fw.Spec)
	r.setUserdataCondition(fw, renderErr)

	maxAge := r.Config.RunningPoll
	if fw.Status.Phase != v2.FirewallPhaseRunning {
		maxAge = r.creatingPoll(fw)
	}
	machines, err := r.Fleet.Lookup(ctx, fw, maxAge)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("looking up machine: %w", err)
	}

	switch {
	case len(machines) == 1:
		return r.observe(ctx, fw, machines[0], paused)
	case paused && len(machines) > 1:
		r.setCondition(fw, v2.ConditionCreated, false, v2.ReasonMultipleFirewalls,
			fmt.Sprintf("%d machines carry this firewall's name; the extra ones are freed when the pause ends", len(machines)))
		return ctrl.Result{RequeueAfter: r.Config.RunningPoll}, nil
	case len(machines) > 1:
		return r.resolveDuplicates(ctx, fw, machines)
	case paused:
		r.setCondition(fw, v2.ConditionCreated, false, v2.ReasonNotCreated, "no machine; none is allocated while paused")
		return ctrl.Result{RequeueAfter: r.Config.RunningPoll}, nil
	}

	// No machine. Wait for userdata before allocating anything.
	if renderErr != nil {
		var ue *UserdataError
		if errors.As(renderErr, &ue) {
			return ctrl.Result{}, nil // a watch on the Secret or ConfigMap brings us back
		}
		return ctrl.Result{}, renderErr
	}
	// Ask metal-api afresh: a previous allocation may have succeeded although its response was lost.
	if machines, err = r.Fleet.Refresh(ctx, fw); err != nil {
		return ctrl.Result{}, fmt.Errorf("looking up machine before allocation: %w", err)
	}
	if len(machines) > 0 {
		return ctrl.Result{Requeue: true}, nil
	}
	if wait := r.allocationPending(fw); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return r.allocate(ctx, fw, userdata, hash)
}

// allocationPending says how long to wait before a new allocation may be sent: an allocation
// whose outcome is unknown may still complete in metal-api until AllocationGrace has passed
// since it was sent. Past that, the look-up that just came back empty settles it.
func (r *Reconciler) allocationPending(fw *v2.Firewall) time.Duration {
	started := fw.Status.AllocationStarted
	if started == nil {
		return 0
	}
	wait := r.Config.AllocationGrace - r.Now().Sub(started.Time)
	if wait <= 0 {
		r.event(fw, corev1.EventTypeWarning, "AllocationLost", "Allocate",
			"No machine appeared within %s of the allocation sent at %s; allocating again", r.Config.AllocationGrace, started.UTC().Format(time.RFC3339))
		return 0
	}
	r.setCondition(fw, v2.ConditionCreated, false, v2.ReasonAllocating,
		fmt.Sprintf("an allocation sent at %s may still complete; no second one before %s", started.UTC().Format(time.RFC3339), started.Add(r.Config.AllocationGrace).UTC().Format(time.RFC3339)))
	return min(wait, max(r.Config.CreatingPoll, time.Second))
}

// resolveDuplicates keeps one machine of several carrying the firewall's name (an allocation
// that completed twice, or one we could not see in time) and frees the others: the machine the
// status names, else the oldest that phoned home, else the oldest.
func (r *Reconciler) resolveDuplicates(ctx context.Context, fw *v2.Firewall, machines []*metal.FirewallResponse) (ctrl.Result, error) {
	keep := pickMachine(fw, machines)
	ids := make([]string, 0, len(machines))
	for _, m := range machines {
		ids = append(ids, m.ID)
	}
	r.event(fw, corev1.EventTypeWarning, v2.ReasonMultipleFirewalls, "Lookup", "Found %d machines for one firewall (%s); keeping %s, freeing the others",
		len(machines), strings.Join(ids, ", "), keep.ID)
	for _, m := range machines {
		if m == keep {
			continue
		}
		if _, err := r.Metal.FreeMachine(ctx, m.ID); err != nil && !metal.IsNotFound(err) {
			r.setCondition(fw, v2.ConditionCreated, false, v2.ReasonMultipleFirewalls,
				fmt.Sprintf("%d machines carry this firewall's name (%s); freeing %s failed: %v", len(machines), strings.Join(ids, ", "), m.ID, err))
			r.Fleet.Invalidate(fw)
			return ctrl.Result{}, fmt.Errorf("freeing duplicate machine %s: %w", m.ID, err)
		}
		logf.FromContext(ctx).Info("Freed duplicate firewall machine", "machine", m.ID, "kept", keep.ID)
		r.event(fw, corev1.EventTypeNormal, "FreedDuplicate", "Free", "Freed duplicate machine %s, kept %s", m.ID, keep.ID)
	}
	r.Fleet.Store(fw, keep)
	return r.observe(ctx, fw, keep, false)
}

func pickMachine(fw *v2.Firewall, machines []*metal.FirewallResponse) *metal.FirewallResponse {
	if ms := fw.Status.MachineStatus; ms != nil {
		for _, m := range machines {
			if m.ID == ms.MachineID {
				return m
			}
		}
	}
	sorted := slices.Clone(machines)
	created := func(m *metal.FirewallResponse) time.Time {
		if m.Allocation != nil {
			return m.Allocation.Created
		}
		return time.Time{}
	}
	phonedHome := func(m *metal.FirewallResponse) bool {
		for _, e := range m.Events.Log {
			if e.Event == metal.EventPhonedHome {
				return true
			}
		}
		return false
	}
	slices.SortStableFunc(sorted, func(a, b *metal.FirewallResponse) int {
		if pa, pb := phonedHome(a), phonedHome(b); pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		if c := created(a).Compare(created(b)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return sorted[0]
}

func (r *Reconciler) allocate(ctx context.Context, fw *v2.Firewall, userdata, hash string) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	if fw.Status.MachineStatus != nil {
		r.event(fw, corev1.EventTypeWarning, v2.ReasonMachineVanished, "Allocate",
			"Machine %s is gone from metal-api; allocating a new one", fw.Status.MachineStatus.MachineID)
		fw.Status.MachineStatus = nil
		fw.Status.FirewallNetworks = nil
		// The new machine has to become ready on its own: measured against the create timeout.
		meta.RemoveStatusCondition(&fw.Status.Conditions, v2.ConditionProvisioned)
	}
	fw.Status.Phase = v2.FirewallPhaseCreating
	r.setCondition(fw, v2.ConditionCreated, false, v2.ReasonAllocating, "allocating a machine")

	networks := make([]metal.MachineAllocationNetwork, 0, len(fw.Spec.Networks))
	for _, n := range fw.Spec.Networks {
		auto := true
		networks = append(networks, metal.MachineAllocationNetwork{NetworkID: n, AutoAcquire: &auto})
	}
	sshKeys := fw.Spec.SSHPublicKeys
	if sshKeys == nil {
		sshKeys = []string{}
	}
	req := &metal.FirewallCreateRequest{
		Name:          fw.Name,
		Hostname:      fw.Name,
		Description:   fmt.Sprintf("firewall %s/%s, managed by palisade", fw.Namespace, fw.Name),
		ProjectID:     fw.Spec.Project,
		PartitionID:   fw.Spec.Partition,
		SizeID:        fw.Spec.Size,
		ImageID:       fw.Spec.Image,
		SSHPubKeys:    sshKeys,
		UserData:      userdata,
		Tags:          r.desiredTags(fw),
		Networks:      networks,
		FirewallRules: splitByFamily(initialRules(fw.Spec.InitialRuleSet)),
	}
	// Record the allocation before sending it: a timeout or a restart must know that one may be
	// completing in metal-api.
	before := fw.DeepCopy()
	now := metav1.NewTime(r.Now())
	fw.Status.AllocationStarted = &now
	if err := r.Client.Status().Patch(ctx, fw, client.MergeFrom(before)); err != nil {
		return ctrl.Result{}, fmt.Errorf("recording the allocation: %w", err)
	}
	log.Info("Allocating firewall machine", "size", fw.Spec.Size, "image", fw.Spec.Image, "partition", fw.Spec.Partition)
	m, err := r.Metal.AllocateFirewall(ctx, req)
	if err != nil {
		r.Fleet.Invalidate(fw)
		r.event(fw, corev1.EventTypeWarning, "FailedCreate", "Allocate", "Allocating the machine failed: %v", err)
		if answered(err) {
			if cerr := r.allocationSettled(ctx, fw); cerr != nil {
				return ctrl.Result{}, cerr
			}
			// Its set and deployment show this message (FirewallsCreated): kept to one line.
			r.setCondition(fw, v2.ConditionCreated, false, v2.ReasonAllocationFailed, "metal-api allocation failed: "+fwutil.SanitizeError(err.Error()))
			return ctrl.Result{}, fmt.Errorf("allocating firewall: %w", err)
		}
		// No answer (timeout, lost connection, gateway timeout): metal-api may still be
		// allocating. Look again, and allocate again only after the grace.
		r.setCondition(fw, v2.ConditionCreated, false, v2.ReasonAllocating, fmt.Sprintf("the allocation's outcome is unknown (%v); waiting for metal-api", err))
		return ctrl.Result{RequeueAfter: max(r.Config.CreatingPoll, time.Second)}, nil
	}
	if err := r.allocationSettled(ctx, fw); err != nil {
		return ctrl.Result{}, err
	}
	r.Fleet.Store(fw, m)
	fw.Status.UserdataHash = hash
	r.setCondition(fw, v2.ConditionCreated, true, v2.ReasonCreated, fmt.Sprintf("machine %s allocated", m.ID))
	r.event(fw, corev1.EventTypeNormal, "SuccessfulCreate", "Allocate", "Allocated machine %s", m.ID)
	r.setMachineStatus(fw, m)
	return ctrl.Result{RequeueAfter: r.creatingPoll(fw)}, nil
}

// creatingPoll is when to look again at the firewall's provisioning machine, as of its status
// (which keeps the allocation time to the second: the first look may come a second early).
func (r *Reconciler) creatingPoll(fw *v2.Firewall) time.Duration {
	var allocated time.Time
	lastEvent := ""
	if ms := fw.Status.MachineStatus; ms != nil {
		allocated = ms.AllocationTimestamp.Time
		if ms.LastEvent != nil {
			lastEvent = ms.LastEvent.Event
		}
	}
	next, watch := creatingPoll(r.Config.CreatingPoll, r.Config.PhoneHomePoll, r.Fleet.Provisioning(fw), allocated, lastEvent, r.Now())
	r.Fleet.Watch(fw, r.Config.PhoneHomePoll, watch)
	return next
}

// allocationSettled clears AllocationStarted at once (the deferred status patch only carries
// changes against the object as it was read, which had no allocation recorded).
func (r *Reconciler) allocationSettled(ctx context.Context, fw *v2.Firewall) error {
	before := fw.DeepCopy()
	fw.Status.AllocationStarted = nil
	if err := r.Client.Status().Patch(ctx, fw, client.MergeFrom(before)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("recording the allocation's outcome: %w", err)
	}
	return nil
}

// answered: metal-api itself answered the allocation (with an error), so it is done with it:
// the next look-up shows a machine if one was allocated after all (a lost response). Without an
// answer, or with a gateway's timeout, it may still be allocating.
func answered(err error) bool {
	switch metal.StatusCode(err) {
	case 0, http.StatusRequestTimeout, http.StatusBadGateway, http.StatusGatewayTimeout:
		return false
	}
	return true
}

// observe reads the machine into the status and keeps tags and ssh keys in sync.
func (r *Reconciler) observe(ctx context.Context, fw *v2.Firewall, m *metal.FirewallResponse, paused bool) (ctrl.Result, error) {
	fw.Status.AllocationStarted = nil // confirmed
	r.setCondition(fw, v2.ConditionCreated, true, v2.ReasonCreated, fmt.Sprintf("machine %s allocated", m.ID))
	r.setMachineStatus(fw, m)
	ms := fw.Status.MachineStatus

	lastEvent := ""
	if ms.LastEvent != nil {
		lastEvent = ms.LastEvent.Event
	}
	alive := ms.Liveliness == metal.LivelinessAlive
	switch {
	case alive && !ms.CrashLoop && lastEvent == metal.EventPhonedHome:
		fw.Status.Phase = v2.FirewallPhaseRunning
		r.setCondition(fw, v2.ConditionReady, true, v2.ReasonReady, "machine is alive and phoned home")
		if paused {
			return ctrl.Result{RequeueAfter: r.Config.RunningPoll}, nil // tags and ssh keys sync after the pause
		}
		if err := r.syncMachine(ctx, fw, m); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: r.Config.RunningPoll}, nil
	case alive && !ms.CrashLoop:
		fw.Status.Phase = v2.FirewallPhaseCreating
		r.setCondition(fw, v2.ConditionReady, false, v2.ReasonNotReady, fmt.Sprintf("provisioning, last event %q", lastEvent))
		return ctrl.Result{RequeueAfter: r.creatingPoll(fw)}, nil
	case ms.CrashLoop:
		fw.Status.Phase = v2.FirewallPhaseCrashing
		r.setCondition(fw, v2.ConditionReady, false, v2.ReasonCrashLoop, fmt.Sprintf("machine is crash-looping, last event %q", lastEvent))
		return ctrl.Result{RequeueAfter: r.Config.CreatingPoll}, nil
	default:
		if fw.Status.Phase == "" {
			fw.Status.Phase = v2.FirewallPhaseCreating
		}
		r.setCondition(fw, v2.ConditionReady, false, v2.ReasonNotFinishing, fmt.Sprintf("machine liveliness is %q, last event %q", ms.Liveliness, lastEvent))
		return ctrl.Result{RequeueAfter: r.Config.CreatingPoll}, nil
	}
}

// syncMachine writes tags and ssh keys to the machine when they drifted.
func (r *Reconciler) syncMachine(ctx context.Context, fw *v2.Firewall, m *metal.FirewallResponse) error {
	update := &metal.MachineUpdateRequest{ID: m.ID}
	changed := false
	if tags := mergeTags(m.Tags, r.desiredTags(fw)); !sameSet(tags, m.Tags) {
		update.Tags = tags
		changed = true
	}
	if len(fw.Spec.SSHPublicKeys) > 0 && m.Allocation != nil && !sameSet(fw.Spec.SSHPublicKeys, m.Allocation.SSHPubKeys) {
		update.SSHPubKeys = fw.Spec.SSHPublicKeys
		changed = true
	}
	if !changed {
		return nil
	}
	updated, err := r.Metal.UpdateMachine(ctx, update)
	if err != nil {
		return fmt.Errorf("updating tags and ssh keys of machine %s: %w", m.ID, err)
	}
	r.Fleet.Store(fw, updated)
	r.event(fw, corev1.EventTypeNormal, "Synced", "UpdateMachine", "Updated tags or ssh keys of machine %s", m.ID)
	return nil
}

// desiredTags are the tags every machine of this firewall carries.
func (r *Reconciler) desiredTags(fw *v2.Firewall) []string {
	tags := []string{
		v2.ManagedByTag + "=" + v2.ManagedByValue,
		v2.NamespaceTag + "=" + fw.Namespace,
	}
	if id := clusterID(fw, r.Config.ClusterID); id != "" {
		tags = append(tags, v2.ClusterIDTag+"="+id)
	}
	if ref := metav1.GetControllerOf(fw); ref != nil && ref.Kind == "FirewallSet" {
		tags = append(tags, v2.SetTag+"="+ref.Name)
	}
	return tags
}

// mergeTags replaces the keys of desired in current and keeps every other tag.
func mergeTags(current, desired []string) []string {
	keys := map[string]bool{}
	for _, t := range desired {
		k, _, _ := strings.Cut(t, "=")
		keys[k] = true
	}
	var out []string
	for _, t := range current {
		if k, _, _ := strings.Cut(t, "="); !keys[k] {
			out = append(out, t)
		}
	}
	out = append(out, desired...)
	slices.Sort(out)
	return out
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func (r *Reconciler) setMachineStatus(fw *v2.Firewall, m *metal.FirewallResponse) {
	ms := &v2.MachineStatus{
		MachineID:  m.ID,
		Liveliness: m.Liveliness,
		CrashLoop:  m.Events.CrashLoop,
	}
	if len(m.Events.Log) > 0 {
		e := m.Events.Log[0]
		ms.LastEvent = &v2.MachineLastEvent{Event: e.Event, Message: e.Message, Timestamp: metav1.NewTime(e.Time)}
	}
	if a := m.Allocation; a != nil {
		ms.AllocationTimestamp = metav1.NewTime(a.Created)
		if a.Image != nil {
			ms.ImageID = a.Image.ID
		}
		fw.Status.FirewallNetworks = firewallNetworks(a.Networks)
	}
	if ms.AllocationTimestamp.IsZero() {
		ms.AllocationTimestamp = metav1.NewTime(r.Now())
	}
	if old := fw.Status.MachineStatus; old != nil && old.MachineID == ms.MachineID && ms.AllocationTimestamp.Time.Sub(old.AllocationTimestamp.Time).Abs() < time.Second {
		ms.AllocationTimestamp = old.AllocationTimestamp // avoid status churn from time precision
	}
	fw.Status.MachineStatus = ms
}

func firewallNetworks(networks []metal.MachineNetwork) []v2.FirewallNetwork {
	out := make([]v2.FirewallNetwork, 0, len(networks))
	for _, n := range networks {
		asn, vrf, nat := n.ASN, n.VRF, n.NAT
		id, typ := n.NetworkID, n.NetworkType
		out = append(out, v2.FirewallNetwork{
			ASN: &asn, Vrf: &vrf, Nat: &nat, NetworkID: &id, NetworkType: &typ,
			IPs: n.IPs, Prefixes: n.Prefixes, DestinationPrefixes: n.DestinationPrefixes,
		})
	}
	return out
}

func initialRules(rs *v2.InitialRuleSet) *metal.FirewallRules {
	if rs == nil {
		return nil
	}
	out := &metal.FirewallRules{}
	for _, e := range rs.Egress {
		out.Egress = append(out.Egress, metal.FirewallEgressRule{Comment: e.Comment, Protocol: strings.ToLower(string(e.Protocol)), Ports: e.Ports, To: e.To})
	}
	for _, i := range rs.Ingress {
		out.Ingress = append(out.Ingress, metal.FirewallIngressRule{Comment: i.Comment, Protocol: strings.ToLower(string(i.Protocol)), Ports: i.Ports, From: i.From, To: i.To})
	}
	return out
}
