package userdata

import (
	v2 "github.com/palisade-fw/palisade/api/v2"
)

// Source kinds of a userdataContents entry after its form is normalised.
const (
	sourceInline    = "inline"
	sourceSecret    = KindSecret
	sourceConfigMap = KindConfigMap
)

// Source is one userdataContents entry reduced to what it reads, whichever of the accepted
// forms (secretRef/configMapRef, secretName, contentFrom) it was written in. Equal Sources
// render equal files.
type Source struct {
	// Kind is "inline", KindSecret or KindConfigMap.
	Kind string
	// Content is the inline content (Kind "inline").
	Content string
	// Name of the Secret or ConfigMap.
	Name string
	// Key as written; empty means the object's only key, or v2.DefaultUserdataKey.
	Key string
	// Generate asks for a generated agent kubeconfig in the Secret.
	Generate bool
}

// SourceOf normalises an entry; ok is false when the entry names no source at all (the CRD
// refuses such entries).
func SourceOf(c v2.UserdataContent) (Source, bool) {
	switch {
	case c.Content != nil:
		return Source{Kind: sourceInline, Content: *c.Content}, true
	case c.SecretRef != nil:
		return Source{Kind: sourceSecret, Name: c.SecretRef.Name, Key: c.SecretRef.Key,
			Generate: c.SecretRef.GenerateFirewallControllerKubeconfig}, true
	case c.ConfigMapRef != nil:
		return Source{Kind: sourceConfigMap, Name: c.ConfigMapRef.Name, Key: c.ConfigMapRef.Key}, true
	case c.SecretName != "":
		return Source{Kind: sourceSecret, Name: c.SecretName}, true
	case c.ContentFrom != nil:
		from := c.ContentFrom
		switch {
		case from.SecretKeyRef != nil:
			return Source{Kind: sourceSecret, Name: from.SecretKeyRef.Name, Key: from.SecretKeyRef.Key}, true
		case from.ConfigMapKeyRef != nil:
			return Source{Kind: sourceConfigMap, Name: from.ConfigMapKeyRef.Name, Key: from.ConfigMapKeyRef.Key}, true
		case from.FirewallControllerKubeconfigSecret != nil:
			ref := from.FirewallControllerKubeconfigSecret
			return Source{Kind: sourceSecret, Name: ref.Name, Key: ref.Key, Generate: true}, true
		}
	}
	return Source{}, false
}

// chooseKey picks the key an entry reads when none was written: the only key of the object,
// otherwise v2.DefaultUserdataKey. A written key is used as is.
func chooseKey(key string, keys []string) string {
	if key != "" {
		return key
	}
	if len(keys) == 1 {
		return keys[0]
	}
	return v2.DefaultUserdataKey
}
