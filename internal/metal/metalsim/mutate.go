package metalsim

import (
	"slices"
	"strings"

	"github.com/palisade-fw/palisade/internal/metal"
)

// freeMachine implements DELETE /v1/machine/{id}/free: the answer has no
// allocation any more, then Machine Reclaim starts the trip back to the pool.
func (s *Simulator) freeMachine(rc *reqCtx) (any, error) {
	st := rc.st
	m := st.machines[rc.id()]
	if m == nil {
		return nil, errNotFound("no machine with id %q found", rc.id())
	}
	if m.stateValue == metal.StateLocked {
		return nil, errUnprocessable("machine is locked")
	}
	if m.allocation == nil {
		// metal-api has no "not allocated" check: freeing twice succeeds.
		return s.render(rc, m), nil
	}
	failReclaim := st.matchesAny(m, st.faults.failReclaim)
	st.record(TimelineFreed, m, rc.now, "")
	st.releaseIPs(m.id)
	m.allocation = nil
	m.userTags = nil
	m.installed = false
	m.changed = rc.now
	resp := s.render(rc, m)

	st.applyEvent(m, metal.EventMachineReclaim, "free machine called", rc.now)
	m.waiting = false
	m.reclaiming = true
	if failReclaim {
		st.scheduleFailedReclaim(m, rc.now)
	} else {
		st.scheduleReclaim(m, rc.now)
	}
	return resp, nil
}

// updateMachine implements the admin POST /v1/machine.
func (s *Simulator) updateMachine(rc *reqCtx) (any, error) {
	var req metal.MachineUpdateRequest
	if err := rc.decode(&req); err != nil {
		return nil, err
	}
	m := rc.st.machines[req.ID]
	if m == nil {
		return nil, errNotFound("no machine with id %q found", req.ID)
	}
	if m.allocation == nil {
		return nil, errBadRequest("only allocated machines can be updated")
	}
	for _, k := range req.SSHPubKeys {
		if !validSSHKey(k) {
			return nil, errUnprocessable("invalid public SSH key: %q", truncate(k, 40))
		}
	}
	if len(req.SSHPubKeys) > 0 {
		m.allocation.SSHPubKeys = slices.Clone(req.SSHPubKeys)
	}
	if len(req.Tags) > 0 {
		// System labels are re-added on render; drop stale copies.
		m.userTags = slices.DeleteFunc(dedupe(req.Tags), func(t string) bool {
			return strings.HasPrefix(t, "machine.metal-stack.io/")
		})
	}
	if req.Description != nil {
		m.allocation.Description = *req.Description
	}
	m.changed = rc.now
	rc.st.record(TimelineUpdated, m, rc.now, "")
	return s.render(rc, m), nil
}

// reinstallMachine implements POST /v1/machine/{id}/reinstall.
func (s *Simulator) reinstallMachine(rc *reqCtx) (any, error) {
	var req metal.MachineReinstallRequest
	if err := rc.decode(&req); err != nil {
		return nil, err
	}
	st := rc.st
	m := st.machines[rc.id()]
	if m == nil {
		return nil, errNotFound("no machine with id %q found", rc.id())
	}
	if m.allocation == nil {
		return nil, errBadRequest("machine %q is not allocated", m.id)
	}
	if m.stateValue == metal.StateLocked {
		return nil, errBadRequest("machine %q is locked", m.id)
	}
	img, ok := st.resolveImage(req.ImageID)
	if !ok {
		return nil, errBadRequest("image:%q not found", req.ImageID)
	}
	if !hasAllFeatures(img, []string{m.allocation.Role}) {
		return nil, errBadRequest("image %q is not usable for a %s", img.ID, m.allocation.Role)
	}
	m.allocation.Image = st.renderImage(img)
	m.allocation.Reinstall = true
	m.installed = false
	m.changed = rc.now
	st.applyEvent(m, metal.EventPlannedReboot, "reinstall requested", rc.now)
	st.scheduleReinstall(m, rc.now)
	st.record(TimelineReinstalled, m, rc.now, img.ID)
	return s.render(rc, m), nil
}

// deleteMachine implements the admin DELETE /v1/machine/{id}: the machine
// leaves the database; an allocated one must be freed first.
func (s *Simulator) deleteMachine(rc *reqCtx) (any, error) {
	st := rc.st
	m := st.machines[rc.id()]
	if m == nil {
		return nil, errNotFound("no machine with id %q found", rc.id())
	}
	if m.allocation != nil {
		return nil, errUnprocessable("cannot delete machine that is allocated")
	}
	resp := s.render(rc, m)
	st.record(TimelineDeleted, m, rc.now, "")
	st.releaseIPs(m.id)
	delete(st.machines, m.id)
	return resp, nil
}
