package fwutil

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// TemplateHashAnnotation on a FirewallSet records the hash of the fields that need new machines.
const TemplateHashAnnotation = "firewall.metal-stack.io/template-hash"

// Labels Palisade puts on the objects it creates.
const (
	DeploymentLabel = "firewall.metal-stack.io/deployment"
	SetLabel        = "firewall.metal-stack.io/set"
)

// RolloutHash hashes what can only change with new machines: size, image, the set of networks
// and the rendered userdata (metal-api applies userdata at allocation only). Everything else is
// applied in place.
func RolloutHash(spec *v2.FirewallSpec, userdataHash string) string {
	networks := slices.Clone(spec.Networks)
	slices.Sort(networks)
	networks = slices.Compact(networks)
	b, _ := json.Marshal(struct {
		Size, Image string
		Networks    []string
		Userdata    string
	}{spec.Size, spec.Image, networks, userdataHash})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// Revision is the set's revision annotation, -1 when missing or malformed.
func Revision(set *v2.FirewallSet) int {
	r, err := strconv.Atoi(set.Annotations[v2.RevisionAnnotation])
	if err != nil {
		return -1
	}
	return r
}

// RandomSuffix returns n lowercase alphanumerics, as used in generated object names.
func RandomSuffix(n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// NameWithSuffix builds "<base>-<suffix>" capped so the result is a valid hostname label
// (63 characters): firewall names become machine hostnames.
func NameWithSuffix(base, suffix string) string {
	limit := 63 - len(suffix) - 1
	if len(base) > limit {
		base = strings.TrimRight(base[:limit], "-.")
	}
	return base + "-" + suffix
}
