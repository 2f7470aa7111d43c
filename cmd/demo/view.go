package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// snapshot is one consistent-enough read of the demo's objects, sorted for stable output.
type snapshot struct {
	deployments []v2.FirewallDeployment
	sets        []v2.FirewallSet
	firewalls   []v2.Firewall
	// monitors are what a workload cluster sees; the demo is its own workload cluster.
	monitors []v2.FirewallMonitor
}

func takeSnapshot(ctx context.Context, c client.Reader) (snapshot, error) {
	var s snapshot
	var deployments v2.FirewallDeploymentList
	var sets v2.FirewallSetList
	var firewalls v2.FirewallList
	var monitors v2.FirewallMonitorList
	for _, list := range []client.ObjectList{&deployments, &sets, &firewalls, &monitors} {
		if err := c.List(ctx, list); err != nil {
			return s, err
		}
	}
	byKey := func(a, b metav1.Object) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), a.GetCreationTimestamp().Compare(b.GetCreationTimestamp().Time), cmp.Compare(a.GetName(), b.GetName()))
	}
	s.deployments, s.sets, s.firewalls, s.monitors = deployments.Items, sets.Items, firewalls.Items, monitors.Items
	slices.SortFunc(s.deployments, func(a, b v2.FirewallDeployment) int { return byKey(&a, &b) })
	slices.SortFunc(s.sets, func(a, b v2.FirewallSet) int { return byKey(&a, &b) })
	slices.SortFunc(s.firewalls, func(a, b v2.Firewall) int { return byKey(&a, &b) })
	slices.SortFunc(s.monitors, func(a, b v2.FirewallMonitor) int { return byKey(&a, &b) })
	return s, nil
}

// firewallsOf returns the firewalls in the deployment's namespace that belong to it (through
// their set).
func (s snapshot) firewallsOf(d v2.FirewallDeployment) []v2.Firewall {
	sets := map[string]bool{}
	for _, set := range s.sets {
		if set.Namespace == d.Namespace && ownedBy(&set, d.Name) {
			sets[set.Name] = true
		}
	}
	var out []v2.Firewall
	for _, fw := range s.firewalls {
		if fw.Namespace == d.Namespace && sets[owner(&fw)] {
			out = append(out, fw)
		}
	}
	return out
}

func owner(o metav1.Object) string {
	if ref := metav1.GetControllerOf(o); ref != nil {
		return ref.Name
	}
	return ""
}

func ownedBy(o metav1.Object, name string) bool { return owner(o) == name }

func firewallReady(fw *v2.Firewall) bool {
	return fw.Status.Phase == v2.FirewallPhaseRunning && meta.IsStatusConditionTrue(fw.Status.Conditions, v2.ConditionReady)
}

// progress of one deployment towards running all its replicas on image.
type progress struct {
	name              string // namespace/name
	replicas          int
	readyOnImage      int
	onOtherImage      int
	deploymentSettled bool
}

func (p progress) done() bool {
	return p.deploymentSettled && p.readyOnImage == p.replicas && p.onOtherImage == 0
}

func (s snapshot) progressTo(image string) []progress {
	var out []progress
	for _, d := range s.deployments {
		p := progress{
			name:     d.Namespace + "/" + d.Name,
			replicas: d.Spec.Replicas,
			deploymentSettled: d.Status.ObservedGeneration == d.Generation &&
				meta.IsStatusConditionTrue(d.Status.Conditions, v2.ConditionAvailable),
		}
		for _, fw := range s.firewallsOf(d) {
			switch {
			case fw.Spec.Image != image:
				p.onOtherImage++
			case firewallReady(&fw):
				p.readyOnImage++
			}
		}
		out = append(out, p)
	}
	return out
}

// allDone reports whether every deployment runs all replicas on image; at least one must exist.
func allDone(ps []progress) bool {
	return len(ps) > 0 && !slices.ContainsFunc(ps, func(p progress) bool { return !p.done() })
}

func bar(done, total, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat("-", width) + "]"
	}
	filled := min(done*width/total, width)
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", width-filled) + "]"
}

func conditionStatus(conds []metav1.Condition, t string) string {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return string(c.Status)
	}
	return "-"
}

func age(t metav1.Time, now time.Time) string {
	return now.Sub(t.Time).Truncate(time.Second).String()
}

// table renders the snapshot as three kubectl-like tables.
func (s snapshot) table(now time.Time) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "FIREWALLDEPLOYMENT\tREPLICAS\tREADY\tUPDATED\tAVAILABLE\tPROGRESSING\tIMAGE\tAGE")
	for _, d := range s.deployments {
		fmt.Fprintf(w, "%s/%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", d.Namespace, d.Name, d.Spec.Replicas, d.Status.ReadyReplicas, d.Status.UpdatedReplicas,
			conditionStatus(d.Status.Conditions, v2.ConditionAvailable), conditionStatus(d.Status.Conditions, v2.ConditionProgressing),
			d.Spec.Template.Spec.Image, age(d.CreationTimestamp, now))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "FIREWALLSET\tREVISION\tREPLICAS\tREADY\tPROGRESSING\tDISTANCE\tIMAGE\tAGE")
	for _, set := range s.sets {
		fmt.Fprintf(w, "%s/%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", set.Namespace, set.Name, set.Annotations[v2.RevisionAnnotation], set.Spec.Replicas,
			set.Status.ReadyReplicas, set.Status.ProgressingReplicas, set.Spec.Distance, set.Spec.Template.Spec.Image, age(set.CreationTimestamp, now))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "FIREWALL\tPHASE\tREADY\tMACHINE\tLAST EVENT\tDISTANCE\tIMAGE\tAGE")
	for _, fw := range s.firewalls {
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", fw.Namespace, fw.Name, cmp.Or(string(fw.Status.Phase), "Pending"),
			conditionStatus(fw.Status.Conditions, v2.ConditionReady), machineID(&fw), lastEvent(&fw), fw.Distance, fw.Spec.Image, age(fw.CreationTimestamp, now))
	}
	if len(s.monitors) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "FIREWALLMONITOR (workload cluster)\tIMAGE\tMACHINE\tLAST EVENT\tAGE")
		for _, m := range s.monitors {
			fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%s\n", m.Namespace, m.Name, m.Image, monitorMachine(&m), monitorEvent(&m), age(m.CreationTimestamp, now))
		}
	}
	_ = w.Flush()
	return b.String()
}

func machineID(fw *v2.Firewall) string {
	if fw.Status.MachineStatus == nil || fw.Status.MachineStatus.MachineID == "" {
		return "-"
	}
	return fw.Status.MachineStatus.MachineID
}

func lastEvent(fw *v2.Firewall) string {
	if fw.Status.MachineStatus == nil || fw.Status.MachineStatus.LastEvent == nil {
		return "-"
	}
	return fw.Status.MachineStatus.LastEvent.Event
}

func monitorMachine(m *v2.FirewallMonitor) string {
	if m.MachineStatus == nil || m.MachineStatus.MachineID == "" {
		return "-"
	}
	return m.MachineStatus.MachineID
}

func monitorEvent(m *v2.FirewallMonitor) string {
	if m.MachineStatus == nil || m.MachineStatus.LastEvent == nil {
		return "-"
	}
	return m.MachineStatus.LastEvent.Event
}

// lines describes every object in one line each, keyed by kind and name, for the line view.
func (s snapshot) lines() map[string]string {
	out := map[string]string{}
	for _, d := range s.deployments {
		out["firewalldeployment "+d.Namespace+"/"+d.Name] = fmt.Sprintf("ready %d/%d updated %d available=%s image=%s",
			d.Status.ReadyReplicas, d.Spec.Replicas, d.Status.UpdatedReplicas, conditionStatus(d.Status.Conditions, v2.ConditionAvailable), d.Spec.Template.Spec.Image)
	}
	for _, set := range s.sets {
		out["firewallset "+set.Namespace+"/"+set.Name] = fmt.Sprintf("revision %s ready %d/%d distance %d image=%s",
			set.Annotations[v2.RevisionAnnotation], set.Status.ReadyReplicas, set.Spec.Replicas, set.Spec.Distance, set.Spec.Template.Spec.Image)
	}
	for _, fw := range s.firewalls {
		out["firewall "+fw.Namespace+"/"+fw.Name] = fmt.Sprintf("%s ready=%s machine=%s event=%q distance %d image=%s",
			cmp.Or(string(fw.Status.Phase), "Pending"), conditionStatus(fw.Status.Conditions, v2.ConditionReady), machineID(&fw), lastEvent(&fw), fw.Distance, fw.Spec.Image)
	}
	for _, m := range s.monitors {
		out["firewallmonitor "+m.Namespace+"/"+m.Name] = fmt.Sprintf("machine=%s event=%q image=%s", monitorMachine(&m), monitorEvent(&m), m.Image)
	}
	return out
}

// view shows snapshots: redrawn in place on a terminal, or one line per change otherwise.
type view struct {
	out        io.Writer
	live       bool
	start      time.Time
	lastLines  map[string]string
	lastStatus string
	drawn      int // lines of the last live frame, to move the cursor back over it
}

func (v *view) show(s snapshot, status string) {
	now := time.Now()
	if v.live {
		// The elapsed time goes on the first line; progress bars may follow.
		title, details, _ := strings.Cut(status, "\n")
		frame := fmt.Sprintf("%s  (+%s)\n", title, now.Sub(v.start).Truncate(100*time.Millisecond))
		if details != "" {
			frame += details + "\n"
		}
		frame += "\n" + s.table(now)
		v.redraw(frame)
		return
	}
	current := s.lines()
	keys := make([]string, 0, len(current))
	for k := range current {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v.lastLines[k] != current[k] {
			v.logf("%s: %s", k, current[k])
		}
	}
	for k := range v.lastLines {
		if _, ok := current[k]; !ok {
			v.logf("%s: deleted", k)
		}
	}
	v.lastLines = current
	if status != v.lastStatus {
		for _, l := range strings.Split(status, "\n") {
			v.logf("%s", strings.TrimSpace(l))
		}
		v.lastStatus = status
	}
}

// redraw replaces the previous frame: cursor up over it, then each line cleared as written.
func (v *view) redraw(frame string) {
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	lines := strings.Split(strings.TrimRight(frame, "\n"), "\n")
	for _, l := range lines {
		b.WriteString("\r" + l + "\x1b[K\n")
	}
	b.WriteString("\x1b[J")
	_, _ = io.WriteString(v.out, b.String())
	v.drawn = len(lines)
}

// logf prints a message below the live frame (which then starts afresh) or as a plain line.
func (v *view) logf(format string, args ...any) {
	v.drawn = 0
	fmt.Fprintf(v.out, "%7s  %s\n", "+"+time.Since(v.start).Truncate(100*time.Millisecond).String(), fmt.Sprintf(format, args...))
}
