package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/workload"
)

// In single-cluster mode the workload cluster is the manager's own: it applies these there.
// +kubebuilder:rbac:groups="",resources=services;endpoints,verbs=get;create;patch

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
	var list v2.FirewallList
	if err := r.Client.List(ctx, &list, client.InNamespace(fw.Namespace)); err != nil {
		return fmt.Errorf("listing firewalls for the exporter endpoints: %w", err)
	}
	var peers []v2.Firewall
	for i := range list.Items {
		if sameWorkload(&list.Items[i], fw) {
			peers = append(peers, list.Items[i])
		}
	}
	wc, err := r.Workload.For(ctx, fw)
	if err != nil {
		var ue *workload.UnavailableError
		if errors.As(err, &ue) {
			return nil // the monitor's condition tells; the next poll tries again
		}
		return err
	}
	for _, obj := range exporterObjects(wc.Namespace, exporterAddresses(peers)) {
		if err := wc.Client.Apply(ctx, obj, client.FieldOwner(exporterFieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying the exporter endpoints in the workload cluster: %w", err)
		}
	}
	return nil
}
