package firewalldeployment

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/metal"
)

// Gardener's objects the egress CIDRs are published to, as the upstream manager does: the
// shoot's Infrastructure gets status.egressCIDRs, and the "acl" Extension is asked to reconcile
// so that it picks them up. Both are read as unstructured: Palisade does not import Gardener.
var (
	infrastructureGVK = schema.GroupVersionKind{Group: "extensions.gardener.cloud", Version: "v1alpha1", Kind: "Infrastructure"}
	extensionGVK      = schema.GroupVersionKind{Group: "extensions.gardener.cloud", Version: "v1alpha1", Kind: "Extension"}
)

const (
	aclExtensionName           = "acl"
	gardenerOperation          = "gardener.cloud/operation"
	gardenerOperationReconcile = "reconcile"
)

// shootName is the shoot (and Infrastructure) name of a Gardener shoot namespace
// "shoot--<project>--<name>", or "" for any other namespace.
func shootName(namespace string) string {
	parts := strings.SplitN(namespace, "--", 3)
	if len(parts) != 3 || parts[0] != "shoot" || parts[1] == "" || parts[2] == "" {
		return ""
	}
	return parts[2]
}

// egressCIDRs are the addresses the shoot's traffic leaves through: the firewalls' IPs in
// external networks, as single-address prefixes, and the SNAT IPs of the Infrastructure's
// firewall egress rules. Sorted and unique.
func egressCIDRs(firewalls []*v2.Firewall, egressRuleIPs []string) []string {
	var out []string
	add := func(ip string) {
		if a, err := netip.ParseAddr(ip); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()).String())
		}
	}
	for _, fw := range firewalls {
		for _, n := range fw.Status.FirewallNetworks {
			if n.NetworkType != nil && *n.NetworkType == metal.NetworkTypeExternal {
				for _, ip := range n.IPs {
					add(ip)
				}
			}
		}
	}
	for _, ip := range egressRuleIPs {
		add(ip)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// The egress CIDR publishing's rights, in the placeholder namespace "shoot-namespace": the chart grants them in each
// served namespace named shoot--<project>--<name>, the Infrastructure's by its name <name>
// (docs/security.md), never cluster-wide. Objects are read one by one (no list, no watch).
// +kubebuilder:rbac:groups=extensions.gardener.cloud,namespace=shoot-namespace,resources=infrastructures,verbs=get
// +kubebuilder:rbac:groups=extensions.gardener.cloud,namespace=shoot-namespace,resources=infrastructures/status,verbs=patch
// +kubebuilder:rbac:groups=extensions.gardener.cloud,namespace=shoot-namespace,resources=extensions,resourceNames=acl,verbs=get;update

// publishEgressCIDRs writes the egress CIDRs into the shoot's Infrastructure status when they
// changed and pokes the acl Extension. Outside a shoot namespace, or without the Infrastructure
// (or its CRD), it does nothing.
func (r *Reconciler) publishEgressCIDRs(ctx context.Context, deploy *v2.FirewallDeployment, sets []*v2.FirewallSet) error {
	name := shootName(deploy.Namespace)
	if name == "" {
		return nil
	}
	infra := &unstructured.Unstructured{}
	infra.SetGroupVersionKind(infrastructureGVK)
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: deploy.Namespace, Name: name}, infra); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return nil
		}
		return fmt.Errorf("reading Infrastructure %s: %w", name, err)
	}

	setUIDs := map[types.UID]bool{}
	for _, s := range sets {
		setUIDs[s.UID] = true
	}
	var list v2.FirewallList
	if err := r.Client.List(ctx, &list, client.InNamespace(deploy.Namespace)); err != nil {
		return fmt.Errorf("listing firewalls: %w", err)
	}
	var owned []*v2.Firewall
	for i := range list.Items {
		if ref := metav1.GetControllerOf(&list.Items[i]); ref != nil && setUIDs[ref.UID] {
			owned = append(owned, &list.Items[i])
		}
	}
	var ruleIPs []string
	rules, _, _ := unstructured.NestedSlice(infra.Object, "spec", "providerConfig", "firewall", "egressRules")
	for _, rule := range rules {
		if m, ok := rule.(map[string]any); ok {
			ips, _, _ := unstructured.NestedStringSlice(m, "ips")
			ruleIPs = append(ruleIPs, ips...)
		}
	}
	want := egressCIDRs(owned, ruleIPs)
	have, _, _ := unstructured.NestedStringSlice(infra.Object, "status", "egressCIDRs")
	if slices.Equal(have, want) {
		return nil
	}

	patch := client.MergeFrom(infra.DeepCopy())
	values := make([]any, len(want))
	for i, c := range want {
		values[i] = c
	}
	if err := unstructured.SetNestedSlice(infra.Object, values, "status", "egressCIDRs"); err != nil {
		return err
	}
	if err := r.Client.Status().Patch(ctx, infra, patch); err != nil {
		return fmt.Errorf("patching Infrastructure %s status.egressCIDRs: %w", name, err)
	}

	acl := &unstructured.Unstructured{}
	acl.SetGroupVersionKind(extensionGVK)
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: deploy.Namespace, Name: aclExtensionName}, acl); err != nil {
		return client.IgnoreNotFound(err)
	}
	annotations := acl.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[gardenerOperation] = gardenerOperationReconcile
	acl.SetAnnotations(annotations)
	// Update, not patch: GEPM's Role for the manager grants get and update on Extensions.
	return client.IgnoreNotFound(r.Client.Update(ctx, acl))
}

// firewallEgressChanged admits firewall events of shoot namespaces that change the firewall's
// external IPs, which nothing else brings to the deployment (a firewall waiting for its agent
// changes no set status).
type firewallEgressChanged struct{ predicate.Funcs }

func (firewallEgressChanged) Create(event.CreateEvent) bool { return false }
func (firewallEgressChanged) Delete(e event.DeleteEvent) bool {
	return shootName(e.Object.GetNamespace()) != ""
}
func (firewallEgressChanged) Generic(event.GenericEvent) bool { return false }
func (firewallEgressChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*v2.Firewall)
	n, ok2 := e.ObjectNew.(*v2.Firewall)
	if !ok1 || !ok2 || shootName(n.Namespace) == "" {
		return false
	}
	return !slices.Equal(egressCIDRs([]*v2.Firewall{o}, nil), egressCIDRs([]*v2.Firewall{n}, nil))
}

// deploymentOfFirewall maps a firewall to the deployment controlling its set.
func (r *Reconciler) deploymentOfFirewall(ctx context.Context, obj client.Object) []reconcile.Request {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != "FirewallSet" {
		return nil
	}
	var set v2.FirewallSet
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: ref.Name}, &set); err != nil {
		return nil
	}
	owner := metav1.GetControllerOf(&set)
	if owner == nil || owner.Kind != "FirewallDeployment" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: owner.Name}}}
}
