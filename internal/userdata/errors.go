package userdata

import (
	"errors"
	"fmt"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// Kinds of referenced objects, as used in MissingError.Kind.
const (
	KindSecret    = "Secret"
	KindConfigMap = "ConfigMap"
)

// MissingError says a referenced Secret or ConfigMap, or a key in it, does not exist (yet).
// Controllers treat it as "wait", not as a failure: the object may appear later (for example
// the workload kubeconfig Cluster API writes once the cluster is up).
type MissingError struct {
	// Kind is KindSecret or KindConfigMap.
	Kind string
	Name string
	Key  string
	// Reason is v2.ReasonSecretMissing, v2.ReasonConfigMapMissing or v2.ReasonKeyMissing.
	Reason string
}

func (e *MissingError) Error() string {
	if e.Reason == v2.ReasonKeyMissing {
		return fmt.Sprintf("%s %q has no key %q", e.Kind, e.Name, e.Key)
	}
	return fmt.Sprintf("%s %q (key %q) not found", e.Kind, e.Name, e.Key)
}

// IsMissing returns the first MissingError in err's tree.
func IsMissing(err error) (*MissingError, bool) {
	var m *MissingError
	if errors.As(err, &m) {
		return m, true
	}
	return nil, false
}

// TooLargeError says the rendered userdata exceeds the renderer's MaxSize.
type TooLargeError struct {
	Size, Max int
	// Reason is always v2.ReasonUserdataTooLarge.
	Reason string
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("rendered userdata is %d bytes, more than the limit of %d bytes", e.Size, e.Max)
}

// IsTooLarge returns the TooLargeError in err's tree.
func IsTooLarge(err error) (*TooLargeError, bool) {
	var t *TooLargeError
	if errors.As(err, &t) {
		return t, true
	}
	return nil, false
}

// ConditionReason maps a Render error to the UserdataReady condition reason, or "" when the
// error is not one of the typed ones (an API error, for example).
func ConditionReason(err error) string {
	if m, ok := IsMissing(err); ok {
		return m.Reason
	}
	if t, ok := IsTooLarge(err); ok {
		return t.Reason
	}
	return ""
}

func missing(kind, name, key, reason string) *MissingError {
	return &MissingError{Kind: kind, Name: name, Key: key, Reason: reason}
}
