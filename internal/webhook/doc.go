// Package webhook holds the admission webhooks for the firewall and policy APIs: defaulting and
// validation of Firewall, FirewallSet and FirewallDeployment (subpackage v2), validation of
// ClusterwideNetworkPolicy (subpackage v1), and the serving certificate (subpackage certs).
// See docs/webhooks.md.
//
// +kubebuilder:webhookconfiguration:mutating=true,name=palisade-mutating-webhook-configuration
// +kubebuilder:webhookconfiguration:mutating=false,name=palisade-validating-webhook-configuration
package webhook
