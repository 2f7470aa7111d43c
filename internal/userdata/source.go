package userdata

import (
	"context"
	"fmt"

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
	switch {
	case c.Content != nil:
		return file{path: c.Path, mode: ModePublic, content: []byte(*c.Content)}, nil
	case c.SecretRef != nil:
		data, err := r.secretValue(ctx, namespace, c.SecretRef.Name, KeyOrDefault(c.SecretRef.Key))
		if err != nil {
			return file{}, err
		}
		return file{path: c.Path, mode: ModeSecret, content: data, generated: c.SecretRef.GenerateFirewallControllerKubeconfig}, nil
	case c.ConfigMapRef != nil:
		data, err := r.configMapValue(ctx, namespace, c.ConfigMapRef.Name, KeyOrDefault(c.ConfigMapRef.Key))
		if err != nil {
			return file{}, err
		}
		return file{path: c.Path, mode: ModePublic, content: data}, nil
	}
	return file{}, fmt.Errorf("userdataContents entry %q has none of content, secretRef and configMapRef", c.Path)
}

func (r *Renderer) secretValue(ctx context.Context, namespace, name, key string) ([]byte, error) {
	var s corev1.Secret
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, missing(KindSecret, name, key, v2.ReasonSecretMissing)
		}
		// The API error names the object, never its data.
		return nil, fmt.Errorf("reading Secret %q: %w", name, err)
	}
	if v, ok := s.Data[key]; ok {
		return v, nil
	}
	return nil, missing(KindSecret, name, key, v2.ReasonKeyMissing)
}

func (r *Renderer) configMapValue(ctx context.Context, namespace, name, key string) ([]byte, error) {
	var cm corev1.ConfigMap
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, missing(KindConfigMap, name, key, v2.ReasonConfigMapMissing)
		}
		return nil, fmt.Errorf("reading ConfigMap %q: %w", name, err)
	}
	if v, ok := cm.Data[key]; ok {
		return []byte(v), nil
	}
	if v, ok := cm.BinaryData[key]; ok {
		return v, nil
	}
	return nil, missing(KindConfigMap, name, key, v2.ReasonKeyMissing)
}
