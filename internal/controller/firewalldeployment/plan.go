package firewalldeployment

import (
	"fmt"
	"slices"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// The rollout is a pure decision: Plan looks at the deployment and its sets (with the number of
// Firewall objects each still owns) and says what to do next. The controller only gathers the
// input, runs Plan and carries the actions out; every transition is table-tested in plan_test.go.
//
// Vocabulary:
//   - target: the newest set built from the template the spec asks for (same template hash).
//     It is created when none exists; a history set with that hash is brought back instead
//     (rollback), like a Deployment reuses a ReplicaSet with the same pod-template-hash.
//   - promoted: a set that carried the traffic once (annotation PromotedAnnotation). Only
//     promoted sets become history; a set that never got ready is deleted when superseded.
//   - carrier: during a RollingUpdate, the old set kept for the traffic until the target is
//     ready: the newest fully ready old set, else the newest promoted one, else the newest one
//     with any ready firewall, else the newest one with any firewall. Every other old set is
//     retired at once.
//   - history: promoted old sets scaled to zero, the newest revisionHistoryLimit of them. They
//     keep their own template: nothing but replicas and inherited annotations is ever written
//     into them, so each records exactly what its revision ran.

// SetState is what Plan needs to know of one set.
type SetState struct {
	Name     string
	Revision int
	// Hash is the set's template hash (size, image, networks, userdata).
	Hash     string
	Replicas int
	Distance v2.FirewallDistance
	// Ready counts ready firewalls; Observed says the set's status is for its current spec.
	Ready    int
	Observed bool
	// Firewalls counts the Firewall objects the set still owns, including those being deleted
	// (their machines are not freed yet).
	Firewalls int
	Deleting  bool
	Promoted  bool
}

// fullyReady: the set has all its firewalls ready, as of its current spec.
func (s SetState) fullyReady() bool {
	return s.Observed && s.Replicas > 0 && s.Ready >= s.Replicas
}

// empty: the set is scaled to zero and its last Firewall object is gone.
func (s SetState) empty() bool { return s.Replicas == 0 && s.Firewalls == 0 }

// PlanInput is the deployment as Plan sees it.
type PlanInput struct {
	Strategy     v2.FirewallUpdateStrategy
	Replicas     int
	HistoryLimit int
	// WantHash is the template hash the spec asks for.
	WantHash string
	// RollRequested forces a new set although the newest one has WantHash (roll-set annotation).
	RollRequested string
	// Sets of the deployment, any order.
	Sets []SetState
}

// ActionKind is one step of a plan.
type ActionKind string

const (
	// ActionCreate creates the target set with Replicas, Distance and Revision.
	ActionCreate ActionKind = "Create"
	// ActionUpdateTarget writes the spec's in-place fields, Replicas, Distance and (when it
	// changes) Revision into the target; Demote drops its promoted mark (a history set brought back).
	ActionUpdateTarget ActionKind = "UpdateTarget"
	// ActionScale sets the Replicas of an old set (0 retires it into history); its template stays.
	ActionScale ActionKind = "Scale"
	// ActionPromote marks a set as carrying the traffic and moves it to the shortest distance.
	ActionPromote ActionKind = "Promote"
	// ActionDelete deletes an old set and frees its machines.
	ActionDelete ActionKind = "Delete"
)

// Action is one step. Only the fields of its kind are set.
type Action struct {
	Kind     ActionKind
	Set      string
	Replicas int
	Distance v2.FirewallDistance
	Revision int
	Demote   bool
	Why      string
}

func (a Action) String() string {
	switch a.Kind {
	case ActionCreate:
		return fmt.Sprintf("Create(rev %d, %d replicas, distance %d)", a.Revision, a.Replicas, a.Distance)
	case ActionUpdateTarget:
		s := fmt.Sprintf("UpdateTarget(%s, rev %d, %d replicas, distance %d", a.Set, a.Revision, a.Replicas, a.Distance)
		if a.Demote {
			s += ", demote"
		}
		return s + ")"
	case ActionScale:
		return fmt.Sprintf("Scale(%s, %d)", a.Set, a.Replicas)
	default:
		return fmt.Sprintf("%s(%s)", a.Kind, a.Set)
	}
}

// RolloutPlan is Plan's answer.
type RolloutPlan struct {
	Actions []Action
	// Target names the target set ("" when it is to be created).
	Target string
	// Phase says where the rollout stands, for the Progressing condition.
	Phase Phase
	// Message explains Phase.
	Message string
}

// Phase of a rollout.
type Phase string

const (
	// PhaseCreating: the target set is being created.
	PhaseCreating Phase = "Creating"
	// PhaseWaitingForTarget: the target has not all its firewalls ready yet.
	PhaseWaitingForTarget Phase = "WaitingForTarget"
	// PhaseRetiring: the target is ready, old sets are scaling down or being freed.
	PhaseRetiring Phase = "Retiring"
	// PhaseComplete: the target carries the traffic, nothing else holds machines.
	PhaseComplete Phase = "Complete"
)

// Plan decides the next steps of a rollout. It is deterministic and side-effect free.
func Plan(in PlanInput) RolloutPlan {
	sets := slices.Clone(in.Sets)
	slices.SortStableFunc(sets, func(a, b SetState) int { return a.Revision - b.Revision })
	maxRevision := -1
	for _, s := range sets {
		maxRevision = max(maxRevision, s.Revision)
	}
	var live []SetState // not being deleted
	for _, s := range sets {
		if !s.Deleting {
			live = append(live, s)
		}
	}

	// The target: the newest live set with the wanted hash, unless a roll was requested and the
	// newest set is that very one.
	targetIdx := -1
	for i := len(live) - 1; i >= 0; i-- {
		if live[i].Hash == in.WantHash {
			targetIdx = i
			break
		}
	}
	if in.RollRequested != "" && targetIdx >= 0 && targetIdx == len(live)-1 {
		targetIdx = -1
	}
	var old []SetState
	for i, s := range live {
		if i != targetIdx {
			old = append(old, s)
		}
	}

	var p RolloutPlan
	if targetIdx < 0 {
		return planCreate(in, old, sets, maxRevision)
	}
	target := live[targetIdx]
	p.Target = target.Name

	if in.Strategy == v2.StrategyRecreate {
		return planRecreate(in, p, target, old, sets, maxRevision)
	}
	return planRollingUpdate(in, p, target, old, maxRevision)
}

func planCreate(in PlanInput, old, all []SetState, maxRevision int) RolloutPlan {
	p := RolloutPlan{Phase: PhaseCreating}
	why := in.RollRequested
	if why == "" {
		if len(old) == 0 {
			why = "no set yet"
		} else {
			why = "size, image, networks or userdata changed"
		}
	}
	a := Action{Kind: ActionCreate, Revision: maxRevision + 1, Replicas: in.Replicas, Distance: v2.FirewallShortestDistance, Why: why}
	switch {
	case in.Strategy == v2.StrategyRecreate:
		if anyHolding(all) {
			a.Replicas = 0 // scaled up once the old sets are gone
		}
	case carrier(old) >= 0:
		a.Distance = v2.FirewallRollingUpdateSetDistance // staged: draws no traffic until ready
	}
	p.Actions = append(p.Actions, a)
	p.Message = "creating a set: " + why
	return p
}

func planRollingUpdate(in PlanInput, p RolloutPlan, target SetState, old []SetState, maxRevision int) RolloutPlan {
	update, promoted := updateTarget(target, in.Replicas, maxRevision)
	ready := target.Replicas == in.Replicas && target.Observed && target.Ready >= in.Replicas

	keep := -1
	if !ready {
		keep = carrier(old)
	}
	var carrierSet *SetState
	if keep >= 0 {
		carrierSet = &old[keep]
	}
	oldEmpty := allEmpty(old)
	promote := ready && oldEmpty && (!promoted || target.Distance != v2.FirewallShortestDistance)

	// The target draws no traffic while another set carries it or old firewalls still run.
	update.Distance = v2.FirewallShortestDistance
	if !promoted && !promote && (carrierSet != nil || ready && !oldEmpty) {
		update.Distance = v2.FirewallRollingUpdateSetDistance
	}
	p.Actions = append(p.Actions, update)

	if carrierSet != nil && !carrierSet.Promoted && carrierSet.fullyReady() {
		// The newest ready old set takes over from older carriers, which retire below.
		p.Actions = append(p.Actions, Action{Kind: ActionPromote, Set: carrierSet.Name, Why: "newest ready old set"})
	}
	p.Actions = append(p.Actions, retire(in, old, keep)...)

	switch {
	case !ready:
		p.Phase = PhaseWaitingForTarget
		p.Message = fmt.Sprintf("set %s has %d of %d firewalls ready", target.Name, target.Ready, in.Replicas)
		if carrierSet != nil {
			p.Message += fmt.Sprintf("; set %s carries the traffic", carrierSet.Name)
		}
	case !oldEmpty:
		p.Phase = PhaseRetiring
		p.Message = fmt.Sprintf("set %s is ready; waiting for %d old sets to scale down", target.Name, countHolding(old))
	default:
		if promote {
			p.Actions = append(p.Actions, Action{Kind: ActionPromote, Set: target.Name, Why: "ready, old sets scaled down"})
		}
		p.Phase = PhaseComplete
		p.Message = fmt.Sprintf("set %s is available", target.Name)
	}
	return p
}

func planRecreate(in PlanInput, p RolloutPlan, target SetState, old, all []SetState, maxRevision int) RolloutPlan {
	update, promoted := updateTarget(target, in.Replicas, maxRevision)
	update.Distance = v2.FirewallShortestDistance
	// Recreate frees first: the target waits until no other set holds a machine, deleted ones too.
	waiting := 0
	for _, s := range all {
		if s.Name != target.Name && (!s.empty() || s.Deleting) {
			waiting++
		}
	}
	// A target that already runs (a replica change while old sets drain) is left running.
	if waiting > 0 && !(promoted && target.Replicas > 0) {
		update.Replicas = 0
	}
	p.Actions = append(p.Actions, update)
	p.Actions = append(p.Actions, retire(in, old, -1)...)
	ready := target.Replicas == in.Replicas && target.Observed && target.Ready >= in.Replicas
	switch {
	case waiting > 0:
		p.Phase = PhaseRetiring
		p.Message = fmt.Sprintf("waiting for %d old sets to free their machines before scaling set %s up", waiting, target.Name)
	case !ready:
		p.Phase = PhaseWaitingForTarget
		p.Message = fmt.Sprintf("set %s has %d of %d firewalls ready", target.Name, target.Ready, in.Replicas)
	default:
		if !promoted {
			p.Actions = append(p.Actions, Action{Kind: ActionPromote, Set: target.Name, Why: "ready"})
		}
		p.Phase, p.Message = PhaseComplete, fmt.Sprintf("set %s is available", target.Name)
	}
	return p
}

// updateTarget brings the target to the spec's replicas. A target that is not the newest
// revision (a rollback, or a change reverted during a roll) gets the next revision; a history
// set brought back loses its promoted mark until it carries traffic again. It returns whether
// the target counts as promoted afterwards.
func updateTarget(target SetState, replicas, maxRevision int) (Action, bool) {
	a := Action{Kind: ActionUpdateTarget, Set: target.Name, Replicas: replicas, Distance: target.Distance, Revision: target.Revision}
	promoted := target.Promoted
	if target.Revision < maxRevision {
		a.Revision = maxRevision + 1
		if target.Replicas == 0 && target.Promoted {
			a.Demote, promoted = true, false
		}
	}
	return a, promoted
}

// carrier picks the old set that keeps the traffic during a RollingUpdate, or -1.
func carrier(old []SetState) int {
	pick := func(ok func(SetState) bool) int {
		for i := len(old) - 1; i >= 0; i-- {
			if old[i].Replicas > 0 && ok(old[i]) {
				return i
			}
		}
		return -1
	}
	if i := pick(SetState.fullyReady); i >= 0 {
		return i
	}
	if i := pick(func(s SetState) bool { return s.Promoted }); i >= 0 {
		return i
	}
	if i := pick(func(s SetState) bool { return s.Ready > 0 }); i >= 0 {
		return i
	}
	// Nothing is ready anywhere: the newest old set with firewalls stays, since a firewall that
	// is up but whose agent never reported may still route.
	return pick(func(s SetState) bool { return s.Firewalls > 0 })
}

// retire scales promoted old sets (except keep) into history and deletes the rest: never-ready
// sets at once, history beyond the limit newest first.
func retire(in PlanInput, old []SetState, keep int) []Action {
	var actions []Action
	history := 0
	for i := len(old) - 1; i >= 0; i-- {
		s := old[i]
		if i == keep {
			continue
		}
		if !s.Promoted {
			actions = append(actions, Action{Kind: ActionDelete, Set: s.Name, Why: "superseded before it carried traffic"})
			continue
		}
		if history < in.HistoryLimit {
			history++
			if s.Replicas != 0 {
				actions = append(actions, Action{Kind: ActionScale, Set: s.Name, Replicas: 0, Why: "kept as revision history"})
			}
			continue
		}
		actions = append(actions, Action{Kind: ActionDelete, Set: s.Name, Why: "beyond the revision history limit"})
	}
	// Oldest first reads better in events and tests.
	slices.Reverse(actions)
	return actions
}

func anyHolding(sets []SetState) bool { return countHolding(sets) > 0 }

func countHolding(sets []SetState) int {
	n := 0
	for _, s := range sets {
		if !s.empty() {
			n++
		}
	}
	return n
}

func allEmpty(sets []SetState) bool { return countHolding(sets) == 0 }
