package userdata

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// File modes: content that may be secret is readable by root only.
const (
	ModeSecret = 0o600
	ModePublic = 0o644
)

// file is one resolved userdataContents entry.
type file struct {
	path    string
	mode    int
	content []byte
	// generated marks a generated agent kubeconfig: its token is left out of the hash.
	generated bool
}

// resolve reads the content of one entry from the namespace. A missing object or key is a
// *MissingError; other read errors are wrapped with the object's kind and name.
func (r *Renderer) resolve(ctx context.Context, namespace string, c v2.UserdataContent) (file, error) {
	src, ok := SourceOf(c)
	if !ok {
		return file{}, fmt.Errorf("userdataContents entry %q has none of content, secretRef, configMapRef, secretName and contentFrom", c.Path)
	}
	switch src.Kind {
	case sourceSecret:
		data, labelled, err := r.secretValue(ctx, namespace, src.Name, src.Key)
		if err != nil {
			return file{}, err
		}
		// A Secret the manager labelled holds a kubeconfig it generates and refreshes itself (also
		// the Gardener shoot kubeconfig, which no generate flag asks for): its token is not hashed.
		return file{path: c.Path, mode: ModeSecret, content: data, generated: src.Generate || labelled}, nil
	case sourceConfigMap:
		data, err := r.configMapValue(ctx, namespace, src.Name, src.Key)
		if err != nil {
			return file{}, err
		}
		return file{path: c.Path, mode: ModePublic, content: data}, nil
	}
	return file{path: c.Path, mode: ModePublic, content: []byte(src.Content)}, nil
}

// secretValue returns the value of key in Secret name, and whether the Secret carries
// GeneratedKubeconfigLabel.
func (r *Renderer) secretValue(ctx context.Context, namespace, name, key string) ([]byte, bool, error) {
	var s corev1.Secret
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, missing(KindSecret, name, KeyOrDefault(key), v2.ReasonSecretMissing)
		}
		// The API error names the object, never its data.
		return nil, false, fmt.Errorf("reading Secret %q: %w", name, err)
	}
	key = chooseKey(key, slices.Collect(maps.Keys(s.Data)))
	if v, ok := s.Data[key]; ok {
		return v, s.Labels[GeneratedKubeconfigLabel] == "true", nil
	}
	return nil, false, missing(KindSecret, name, key, v2.ReasonKeyMissing)
}

func (r *Renderer) configMapValue(ctx context.Context, namespace, name, key string) ([]byte, error) {
	var cm corev1.ConfigMap
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, missing(KindConfigMap, name, KeyOrDefault(key), v2.ReasonConfigMapMissing)
		}
		return nil, fmt.Errorf("reading ConfigMap %q: %w", name, err)
	}
	keys := slices.Collect(maps.Keys(cm.Data))
	keys = append(keys, slices.Collect(maps.Keys(cm.BinaryData))...)
	key = chooseKey(key, keys)
	if v, ok := cm.Data[key]; ok {
		return []byte(v), nil
	}
	if v, ok := cm.BinaryData[key]; ok {
		return v, nil
	}
	return nil, missing(KindConfigMap, name, key, v2.ReasonKeyMissing)
}
