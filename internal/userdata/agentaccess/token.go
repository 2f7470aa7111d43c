package agentaccess

import (
	"bytes"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-fw/palisade/internal/userdata"
)

// tokenState is what a generated Secret says about its token.
type tokenState struct {
	issued, expiry time.Time
}

// refreshAt is when the token has one third of its lifetime left. Agents re-read the Secret,
// so the remaining third is their margin to pick up the new token.
func (t tokenState) refreshAt() time.Time {
	return t.issued.Add(t.expiry.Sub(t.issued) * 2 / 3)
}

// currentToken returns the Secret's token state when the Secret still matches what would be
// generated now (same server, CA, namespace, identity and ServiceAccount UID, every key
// present), and false when a new token and kubeconfig must be written.
func currentToken(secret *corev1.Secret, keys []string, params kubeconfigParams, serviceAccountUID string) (tokenState, bool) {
	if secret.Annotations[userdata.ServiceAccountUIDAnnotation] != serviceAccountUID {
		return tokenState{}, false
	}
	issued, errIssued := time.Parse(time.RFC3339, secret.Annotations[userdata.TokenIssuedAnnotation])
	expiry, errExpiry := time.Parse(time.RFC3339, secret.Annotations[userdata.TokenExpiryAnnotation])
	if errIssued != nil || errExpiry != nil || !expiry.After(issued) {
		return tokenState{}, false
	}
	var first []byte
	for _, key := range keys {
		data, ok := secret.Data[key]
		if !ok || (first != nil && !bytes.Equal(data, first)) {
			return tokenState{}, false
		}
		first = data
	}
	token := tokenOf(first)
	if token == "" {
		return tokenState{}, false
	}
	// Rebuilding with the stored token reproduces the stored bytes only if nothing else changed.
	want, err := buildKubeconfig(params, token)
	if err != nil || !bytes.Equal(want, first) {
		return tokenState{}, false
	}
	return tokenState{issued: issued, expiry: expiry}, true
}
