package v2

import (
	v2 "github.com/palisade-fw/palisade/api/v2"
)

// GardenerShootNamespaceLabel marks the FirewallDeployment Gardener's extension (GEPM) writes;
// upstream's defaulting webhook selects it to generate the firewall-controller's userdata.
const GardenerShootNamespaceLabel = v2.GardenerShootNamespaceLabel

// The upstream firewall-controller's file layout (what today's firewall images run): with
// .seed-kubeconfig present it is the controller's --kubeconfig, the seed namespace is the
// kubeconfig's current context, and the shoot is reached through Firewall.status.shootAccess.
const (
	UpstreamSeedKubeconfigPath = "/etc/firewall-controller/.seed-kubeconfig"
	// UpstreamSeedAccessPrefix + deployment name is the Secret holding the generated kubeconfig,
	// named as upstream names its seed access objects.
	UpstreamSeedAccessPrefix = "firewall-controller-seed-access-"
)

// defaultGardenerUserdata gives a Gardener FirewallDeployment without userdata what upstream's
// webhook gives it: a generated seed kubeconfig for the firewall-controller in the upstream
// layout (Palisade renders it with the firewall-controller unit enabled, with a
// bound, rotated token instead of a long-lived one).
//
// It runs on CREATE and on UPDATE: GEPM compiles against the upstream API, which has no
// userdataContents, so its CreateOrUpdate sends the deployment without them; putting the same
// entry back keeps the stored spec, and with it the firewalls, unchanged.
func defaultGardenerUserdata(deploy *v2.FirewallDeployment) {
	spec := &deploy.Spec.Template.Spec
	if _, ok := deploy.Labels[GardenerShootNamespaceLabel]; !ok || deploy.Name == "" {
		return
	}
	if spec.Userdata != "" || len(spec.UserdataContents) > 0 {
		return
	}
	spec.UserdataContents = []v2.UserdataContent{{
		Path: UpstreamSeedKubeconfigPath,
		SecretRef: &v2.UserdataSecretRef{
			Name:                                 UpstreamSeedAccessPrefix + deploy.Name,
			GenerateFirewallControllerKubeconfig: true,
		},
	}}
}
