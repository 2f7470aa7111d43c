package userdata

// Metadata on the Secrets that hold generated agent kubeconfigs (written by package
// agentaccess, read here and by controllers).
const (
	// GeneratedKubeconfigLabel is "true" on a Secret holding a generated agent kubeconfig.
	GeneratedKubeconfigLabel = "firewall.metal-stack.io/generated-kubeconfig"
	// TokenExpiryAnnotation is the RFC3339 expiry time of the token in the kubeconfig.
	TokenExpiryAnnotation = "firewall.metal-stack.io/token-expiry"
	// TokenIssuedAnnotation is the RFC3339 time the token was requested; with the expiry it gives
	// the token's lifetime, of which the last third triggers a refresh.
	TokenIssuedAnnotation = "firewall.metal-stack.io/token-issued"
	// ServiceAccountUIDAnnotation is the UID of the ServiceAccount the token belongs to; a
	// recreated ServiceAccount invalidates the token, so a new one is requested.
	ServiceAccountUIDAnnotation = "firewall.metal-stack.io/service-account-uid"
)
