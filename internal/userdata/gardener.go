package userdata

import (
	v2 "github.com/palisade-fw/palisade/api/v2"
)

// The upstream firewall-controller's file layout (what today's firewall images run) and the
// names of the Secrets the manager generates them into for a Gardener FirewallDeployment (one
// labelled v2.GardenerShootNamespaceLabel), named as upstream names its access objects.
const (
	// UpstreamSeedKubeconfigPath is the seed kubeconfig: with it present it is the controller's
	// --kubeconfig, and the seed namespace is the current context's name.
	UpstreamSeedKubeconfigPath = "/etc/firewall-controller/.seed-kubeconfig"
	// UpstreamShootKubeconfigPath is the shoot kubeconfig (the unit's KUBECONFIG).
	UpstreamShootKubeconfigPath = "/etc/firewall-controller/.kubeconfig"
	// UpstreamSeedAccessPrefix + deployment name: the Secret with the generated seed kubeconfig.
	UpstreamSeedAccessPrefix = "firewall-controller-seed-access-"
	// UpstreamShootAccessPrefix + deployment name: the Secret with the generated shoot
	// kubeconfig, and the firewall-controller's identity in the shoot.
	UpstreamShootAccessPrefix = "firewall-controller-shoot-access-"
)

// ShootKubeconfigSecret returns the Secret in deploy's namespace the manager writes the shoot
// kubeconfig into: only for a Gardener deployment whose userdataContents read the upstream
// shoot kubeconfig path from the Secret of the upstream name (what the defaulting webhook
// writes), so that no other entry makes the manager write a Secret.
func ShootKubeconfigSecret(deploy *v2.FirewallDeployment) (string, bool) {
	if _, ok := deploy.Labels[v2.GardenerShootNamespaceLabel]; !ok {
		return "", false
	}
	want := UpstreamShootAccessPrefix + deploy.Name
	for _, c := range deploy.Spec.Template.Spec.UserdataContents {
		if c.Path != UpstreamShootKubeconfigPath {
			continue
		}
		if src, ok := SourceOf(c); ok && src.Kind == sourceSecret && src.Name == want && !src.Generate {
			return want, true
		}
	}
	return "", false
}

// DefaultGardenerUserdata gives a Gardener FirewallDeployment without userdata what upstream's
// defaulting webhook gives it: generated seed and shoot kubeconfigs for the firewall-controller
// in the upstream layout (rendered with the firewall-controller unit enabled,
// with bound, rotated tokens instead of long-lived ones). The manager writes the seed
// kubeconfig (generateFirewallControllerKubeconfig) and, for this entry only, the shoot one
// (ShootKubeconfigSecret) with the shoot-side identity. It reports whether it changed deploy.
func DefaultGardenerUserdata(deploy *v2.FirewallDeployment) bool {
	spec := &deploy.Spec.Template.Spec
	if _, ok := deploy.Labels[v2.GardenerShootNamespaceLabel]; !ok || deploy.Name == "" {
		return false
	}
	if spec.Userdata != "" || len(spec.UserdataContents) > 0 {
		return false
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
	return true
}
