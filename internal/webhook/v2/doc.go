// Package v2 holds the admission webhooks of the firewall.metal-stack.io/v2 kinds Firewall,
// FirewallSet and FirewallDeployment: defaulting without side effects, and validation of what
// the CRDs' CEL rules cannot express. See docs/webhooks.md.
package v2
