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
	return collect(spec, func(src Source) (string, bool) {
		return src.Name, src.Kind == sourceSecret
	})
}

// ReferencedConfigMaps returns the sorted, unique names of the ConfigMaps spec's
// userdataContents read.
func ReferencedConfigMaps(spec *v2.FirewallSpec) []string {
	return collect(spec, func(src Source) (string, bool) {
		return src.Name, src.Kind == sourceConfigMap
	})
}

// GeneratedKubeconfigs returns the Secret keys that should hold a generated agent kubeconfig
// (secretRef.generateFirewallControllerKubeconfig or contentFrom.firewallControllerKubeconfigSecret),
// with their key defaulted, sorted by Secret name and key.
func GeneratedKubeconfigs(spec *v2.FirewallSpec) []v2.UserdataSecretRef {
	if spec == nil {
		return nil
	}
	var refs []v2.UserdataSecretRef
	for _, c := range spec.UserdataContents {
		if src, ok := SourceOf(c); ok && src.Generate {
			refs = append(refs, v2.UserdataSecretRef{Name: src.Name, Key: KeyOrDefault(src.Key), GenerateFirewallControllerKubeconfig: true})
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

func collect(spec *v2.FirewallSpec, name func(Source) (string, bool)) []string {
	if spec == nil {
		return nil
	}
	var names []string
	for _, c := range spec.UserdataContents {
		src, ok := SourceOf(c)
		if !ok {
			continue
		}
		if n, ok := name(src); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
