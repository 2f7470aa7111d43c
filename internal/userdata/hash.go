package userdata

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"k8s.io/client-go/tools/clientcmd"
)

// hashEntry is what the hash sees of one file.
type hashEntry struct {
	Path   string `json:"path"`
	Mode   int    `json:"mode"`
	Digest string `json:"digest"`
}

// contentHash hashes what a firewall receives, except generated tokens: paths, modes, contents
// and whether the agent units are enabled (not their list, which changes with the manager's
// release and must not roll every firewall on an upgrade). A generated kubeconfig contributes its server, CA, context and
// identity only, so the periodic token refresh does not roll the firewalls (they re-read the
// refreshed Secret themselves), while a new API server URL or CA does.
func contentHash(files []file, agentUnits bool) string {
	entries := make([]hashEntry, 0, len(files))
	for _, f := range files {
		digest := sha256Hex(f.content)
		if f.generated {
			digest = kubeconfigIdentity(f.content)
		}
		entries = append(entries, hashEntry{Path: f.path, Mode: f.mode, Digest: digest})
	}
	b, _ := json.Marshal(struct {
		Ignition   string      `json:"ignition"`
		AgentUnits bool        `json:"agentUnits"`
		Files      []hashEntry `json:"files"`
	}{IgnitionVersion, agentUnits, entries})
	return sha256Hex(b)
}

// kubeconfigIdentity digests a kubeconfig without its bearer tokens. Content that does not
// parse as a kubeconfig is digested whole.
func kubeconfigIdentity(data []byte) string {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return sha256Hex(data)
	}
	for _, user := range cfg.AuthInfos {
		user.Token = ""
		user.TokenFile = ""
		user.LocationOfOrigin = ""
	}
	for _, c := range cfg.Clusters {
		c.LocationOfOrigin = ""
	}
	for _, c := range cfg.Contexts {
		c.LocationOfOrigin = ""
	}
	// encoding/json sorts map keys, so the digest does not depend on map order.
	b, err := json.Marshal(cfg)
	if err != nil {
		return sha256Hex(data)
	}
	return "kubeconfig:" + sha256Hex(b)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
