// Package userdata renders a FirewallSpec's userdata: the legacy opaque string verbatim, or
// typed userdataContents (inline, Secret or ConfigMap files) into deterministic Ignition JSON
// with a content hash that drives firewall rolls.
//
// Rendering has no side effects: it only reads. The agent kubeconfigs that secretRefs with
// generateFirewallControllerKubeconfig ask for are written by package agentaccess; until they
// exist, Render reports a MissingError and the controller waits.
package userdata
