package userdata

import (
	"cmp"
	"slices"
	"strings"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// ReferencedSecrets returns the sorted, unique names of the Secrets spec's userdataContents
// read, generated kubeconfigs included. Controllers use it to map Secret events to objects.
func ReferencedSecrets(spec *v2.FirewallSpec) []string {
	return collect(spec, func(c v2.UserdataContent) (string, bool) {
		if c.SecretRef == nil {
			return "", false
		}
		return c.SecretRef.Name, true
	})
}

// ReferencedConfigMaps returns the sorted, unique names of the ConfigMaps spec's
// userdataContents read.
func ReferencedConfigMaps(spec *v2.FirewallSpec) []string {
	return collect(spec, func(c v2.UserdataContent) (string, bool) {
		if c.ConfigMapRef == nil {
			return "", false
		}
		return c.ConfigMapRef.Name, true
	})
}

// GeneratedKubeconfigs returns the secretRefs that ask for a generated agent kubeconfig, with
// their key defaulted, sorted by Secret name and key.
func GeneratedKubeconfigs(spec *v2.FirewallSpec) []v2.UserdataSecretRef {
	if spec == nil {
		return nil
	}
	var refs []v2.UserdataSecretRef
	for _, c := range spec.UserdataContents {
		if c.SecretRef != nil && c.SecretRef.GenerateFirewallControllerKubeconfig {
			ref := *c.SecretRef
			ref.Key = KeyOrDefault(ref.Key)
			refs = append(refs, ref)
		}
	}
	slices.SortFunc(refs, func(a, b v2.UserdataSecretRef) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Key, b.Key))
	})
	return slices.Compact(refs)
}

// KeyOrDefault returns key, or v2.DefaultUserdataKey when key is empty.
func KeyOrDefault(key string) string {
	if key == "" {
		return v2.DefaultUserdataKey
	}
	return key
}

func collect(spec *v2.FirewallSpec, name func(v2.UserdataContent) (string, bool)) []string {
	if spec == nil {
		return nil
	}
	var names []string
	for _, c := range spec.UserdataContents {
		if n, ok := name(c); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
