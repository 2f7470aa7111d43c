// Package agentaccess gives the firewall agent of one FirewallDeployment its own, least
// privileged identity in the deployment's namespace and writes the agent kubeconfigs that
// userdataContents ask for (secretRef.generateFirewallControllerKubeconfig).
//
// Unlike upstream, which created long-lived ServiceAccount token Secrets from a mutating
// webhook, tokens here are bound tokens from the TokenRequest API with a bounded lifetime,
// requested by the controller and refreshed before they expire. Everything carries an owner
// reference to the deployment, so deleting it removes the identity and invalidates its tokens.
package agentaccess
