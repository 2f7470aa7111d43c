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
// webhook gives it (userdata.DefaultGardenerUserdata).
//
// It runs on CREATE and on UPDATE: GEPM compiles against the upstream API, which has no
// userdataContents, so its CreateOrUpdate sends the deployment without them; putting the same
// entries back keeps the stored spec, and with it the firewalls, unchanged. (GEPM's own webhook
// configuration calls the defaulter on CREATE only; the deployment controller then applies the
// same defaults to what it reads, so the rendered userdata does not change either.)
func defaultGardenerUserdata(deploy *v2.FirewallDeployment) {
	userdata.DefaultGardenerUserdata(deploy)
}
