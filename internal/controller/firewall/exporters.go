package firewall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/workload"
)

// In single-cluster mode the workload cluster is the manager's own: it applies these there, in
// the monitor namespace, which must then be one of the served namespaces (docs/security.md).
// +kubebuilder:rbac:groups="",namespace=served-namespace,resources=services;endpoints,verbs=get;create;patch

// The exporters every firewall runs, reachable from the workload cluster as headless
// Services with manual Endpoints in the firewall namespace (as upstream): the agent's own
// metrics on 9630 where the nftables-exporter was, and the node-exporter on 9100.
const (
	NftablesExporterService = "nftables-exporter"
	NftablesExporterPort    = 9630
	NodeExporterService     = "node-exporter"
	NodeExporterPort        = 9100
	exporterFieldOwner      = "palisade-manager"
)

// exporterAddresses are the addresses the exporters of the firewalls are reached at from
// the cluster: each running firewall's IP in its private primary network (the nodes'
// network), sorted and without duplicates.
func exporterAddresses(firewalls []v2.Firewall) []string {
	var out []string
	for _, fw := range firewalls {
		if !fw.DeletionTimestamp.IsZero() || fw.Status.MachineStatus == nil {
			continue
		}
		for _, n := range fw.Status.FirewallNetworks {
			if n.NetworkType == nil || !strings.HasPrefix(*n.NetworkType, "privateprimary") {
				continue
			}
			for _, ip := range n.IPs {
				if a, err := netip.ParseAddr(ip); err == nil && !slices.Contains(out, a.String()) {
					out = append(out, a.String())
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// exporterObjects are the Services and Endpoints for addrs in namespace.
func exporterObjects(namespace string, addrs []string) []runtime.ApplyConfiguration {
	var out []runtime.ApplyConfiguration
	for _, e := range []struct {
		name string
		port int32
	}{{NftablesExporterService, NftablesExporterPort}, {NodeExporterService, NodeExporterPort}} {
		labels := map[string]string{v2.MonitorManagedByLabel: v2.ManagedByValue, "app": e.name}
		out = append(out, corev1ac.Service(e.name, namespace).
			WithLabels(labels).
			WithSpec(corev1ac.ServiceSpec().
				WithClusterIP(corev1.ClusterIPNone).
				WithPorts(corev1ac.ServicePort().WithName("metrics").WithPort(e.port).WithProtocol(corev1.ProtocolTCP))))
		ep := corev1ac.Endpoints(e.name, namespace).WithLabels(labels)
		if len(addrs) > 0 {
			subset := corev1ac.EndpointSubset().
				WithPorts(corev1ac.EndpointPort().WithName("metrics").WithPort(e.port).WithProtocol(corev1.ProtocolTCP))
			for _, a := range addrs {
				subset.WithAddresses(corev1ac.EndpointAddress().WithIP(a))
			}
			ep.WithSubsets(subset)
		}
		out = append(out, ep)
	}
	return out
}

// sameWorkload tells whether two firewalls report to the same workload cluster.
func sameWorkload(a, b *v2.Firewall) bool {
	if a.Status.ShootAccess == nil || b.Status.ShootAccess == nil {
		return a.Status.ShootAccess == b.Status.ShootAccess
	}
	return *a.Status.ShootAccess == *b.Status.ShootAccess
}

// reconcileExporters keeps the exporter Services and Endpoints in the firewall's workload
// cluster pointing at every running firewall of that cluster. Server-side apply makes every
// firewall of the cluster write the same content, so they never fight.
func (r *Reconciler) reconcileExporters(ctx context.Context, fw *v2.Firewall) error {
	if r.Workload == nil || fw.Status.MachineStatus == nil || !fw.DeletionTimestamp.IsZero() {
		return nil
	}
	wc, err := r.Workload.For(ctx, fw)
	if err != nil {
		var ue *workload.UnavailableError
		if errors.As(err, &ue) {
			return nil // the monitor's condition tells; the next poll tries again
		}
		return err
	}
	peers, err := r.exporterPeers(ctx, fw, wc)
	if err != nil {
		return err
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	for _, obj := range exporterObjects(wc.Namespace, exporterAddresses(peers)) {
		content, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		// The Services never change and the Endpoints only when a firewall comes or goes:
		// every firewall of the cluster would send the same four applies on every reconcile.
		key := exporterKey{cluster: wc, firewallNamespace: fw.Namespace, object: applyName(obj)}
		if wc.Local {
			key.firewallNamespace = "" // one set of objects for every namespace
		}
		if r.exporters.applied(key, string(content), now) {
			continue
		}
		if err := wc.Client.Apply(ctx, obj, client.FieldOwner(exporterFieldOwner), client.ForceOwnership); err != nil {
			r.exporters.forget(key)
			return fmt.Errorf("applying the exporter endpoints in the workload cluster: %w", err)
		}
		r.exporters.remember(key, string(content), now)
	}
	return nil
}

// exporterPeers are the firewalls whose exporters the objects in wc list. Normally those of
// fw's namespace with the same shoot access. In single-cluster mode every namespace's
// firewalls without a workload kubeconfig report to the manager's own cluster and its one
// monitor namespace: the peers are then all of those, or each namespace would overwrite the
// Endpoints with its own firewalls only.
func (r *Reconciler) exporterPeers(ctx context.Context, fw *v2.Firewall, wc *workload.Cluster) ([]v2.Firewall, error) {
	opts := []client.ListOption{client.UnsafeDisableDeepCopy} // read only
	if !wc.Local {
		opts = append(opts, client.InNamespace(fw.Namespace))
	}
	var list v2.FirewallList
	if err := r.Client.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("listing firewalls for the exporter endpoints: %w", err)
	}
	var peers []v2.Firewall
	for i := range list.Items {
		peer := &list.Items[i]
		if wc.Local && peer.Annotations[v2.WorkloadKubeconfigAnnotation] == "" || !wc.Local && sameWorkload(peer, fw) {
			peers = append(peers, *peer)
		}
	}
	return peers, nil
}

// applyName tells the exporter objects apart: kind, namespace and name.
func applyName(obj runtime.ApplyConfiguration) string {
	switch o := obj.(type) {
	case *corev1ac.ServiceApplyConfiguration:
		return "Service/" + *o.Namespace + "/" + *o.Name
	case *corev1ac.EndpointsApplyConfiguration:
		return "Endpoints/" + *o.Namespace + "/" + *o.Name
	}
	return fmt.Sprintf("%T", obj)
}

// exporterReapply is how long applied exporter objects count as in place: within it, the same
// content is not applied again (each firewall reconcile would send four applies otherwise);
// after it, the next reconcile applies again, which repairs objects changed or deleted by hand.
const exporterReapply = 10 * time.Minute

type exporterKey struct {
	cluster                   *workload.Cluster // a new one when the kubeconfig changed
	firewallNamespace, object string
}

type exporterApply struct {
	content string
	at      time.Time
}

// exporterMemo remembers the content of each exporter object applied per workload cluster and
// firewall namespace.
type exporterMemo struct {
	mu   sync.Mutex
	last map[exporterKey]exporterApply
}

func (m *exporterMemo) applied(key exporterKey, content string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.last[key]
	return ok && last.content == content && now.Sub(last.at) < exporterReapply
}

func (m *exporterMemo) remember(key exporterKey, content string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		m.last = map[exporterKey]exporterApply{}
	}
	for k, v := range m.last { // bounded by what was applied within the interval
		if now.Sub(v.at) >= exporterReapply {
			delete(m.last, k)
		}
	}
	m.last[key] = exporterApply{content: content, at: now}
}

func (m *exporterMemo) forget(key exporterKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.last, key)
}
