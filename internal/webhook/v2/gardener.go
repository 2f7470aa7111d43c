package v2

import (
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/userdata"
)

// GardenerShootNamespaceLabel marks the FirewallDeployment Gardener's extension (GEPM) writes;
// upstream's defaulting webhook selects it to generate the firewall-controller's userdata.
const GardenerShootNamespaceLabel = v2.GardenerShootNamespaceLabel

// The upstream firewall-controller's file layout (what today's firewall images run): with
// .seed-kubeconfig present it is the controller's --kubeconfig, the seed namespace is the
// kubeconfig's current context, and the shoot is reached through Firewall.status.shootAccess
// or, for controllers that predate it, through .kubeconfig.
const (
	UpstreamSeedKubeconfigPath  = userdata.UpstreamSeedKubeconfigPath
	UpstreamShootKubeconfigPath = userdata.UpstreamShootKubeconfigPath
	// UpstreamSeedAccessPrefix + deployment name is the Secret holding the generated seed
	// kubeconfig, named as upstream names its seed access objects.
	UpstreamSeedAccessPrefix = userdata.UpstreamSeedAccessPrefix
	// UpstreamShootAccessPrefix + deployment name is the Secret holding the generated shoot
	// kubeconfig.
	UpstreamShootAccessPrefix = userdata.UpstreamShootAccessPrefix
)

// defaultGardenerUserdata gives a Gardener FirewallDeployment without userdata what upstream's
// webhook gives it: generated seed and shoot kubeconfigs for the firewall-controller in the
// upstream layout (Palisade renders them with the firewall-controller and droptailer units
// enabled, with bound, rotated tokens instead of long-lived ones). The manager writes the seed
// kubeconfig (generateFirewallControllerKubeconfig) and, for this entry only, the shoot one
// (userdata.ShootKubeconfigSecret), with the shoot-side identity.
//
// It runs on CREATE and on UPDATE: GEPM compiles against the upstream API, which has no
// userdataContents, so its CreateOrUpdate sends the deployment without them; putting the same
// entries back keeps the stored spec, and with it the firewalls, unchanged.
func defaultGardenerUserdata(deploy *v2.FirewallDeployment) {
	spec := &deploy.Spec.Template.Spec
	if _, ok := deploy.Labels[GardenerShootNamespaceLabel]; !ok || deploy.Name == "" {
		return
	}
	if spec.Userdata != "" || len(spec.UserdataContents) > 0 {
		return
	}
	spec.UserdataContents = []v2.UserdataContent{
		{
			Path: UpstreamSeedKubeconfigPath,
			SecretRef: &v2.UserdataSecretRef{
				Name:                                 UpstreamSeedAccessPrefix + deploy.Name,
				GenerateFirewallControllerKubeconfig: true,
			},
		},
		{
			Path:      UpstreamShootKubeconfigPath,
			SecretRef: &v2.UserdataSecretRef{Name: UpstreamShootAccessPrefix + deploy.Name},
		},
	}
}
