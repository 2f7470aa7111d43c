package ruleset

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/palisade-fw/palisade/internal/agent/model"
)

// maxReadable bounds the human-readable part of generated names; the hash keeps them unique.
const maxReadable = 64

var hashEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// objectName builds "<prefix>-<hash8>-<readable>" for an object's chain and counter: unique
// (hash of the full key), readable, bounded, and made only of characters nftables accepts in
// an unquoted identifier.
func objectName(prefix string, key model.ObjectKey) string {
	sum := sha256.Sum256([]byte(key.String()))
	readable := key.Name
	if key.Namespace != "" {
		readable = key.Namespace + "/" + key.Name
	}
	return prefix + "-" + hashEncoding.EncodeToString(sum[:5]) + "-" + identifierSafe(readable)
}

// PolicyCounter is the name of a policy's chain and named counter: it counts the traffic the
// policy accepts, and it keeps its value across every apply while the policy exists. Readers
// of counters (metrics, status) use it to label a counter with the policy's name instead of
// the hashed one.
func PolicyCounter(key model.ObjectKey) string { return objectName("cwnp", key) }

// ServiceCounter is the name of a Service's chain and named counter.
func ServiceCounter(key model.ObjectKey) string { return objectName("svc", key) }

// identifierSafe keeps letters, digits and . _ / - and replaces everything else.
func identifierSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxReadable {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '/', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// comment makes a user string safe for an nftables comment: a small character set (no
// quotes, backslashes or newlines) and at most knftables.CommentLengthMax bytes.
func comment(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= knftables.CommentLengthMax-3 {
			b.WriteString("...")
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case strings.ContainsRune(" ._:/,=()-", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
