// Package fielderrors holds the helpers the webhooks share for turning field errors into
// admission responses.
package fielderrors

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Invalid returns the API's Invalid error (HTTP 422, one cause per field) or nil when errs is
// empty.
func Invalid(gk schema.GroupKind, name string, errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(gk, name, errs)
}

// Ratchet drops the errors the old object has as well, as Kubernetes does for CEL rules on
// unchanged fields: an object admitted before a rule existed (or adopted from the upstream
// manager) can still get its finalizers, labels and unrelated fields updated, while a new or
// changed invalid value is refused.
func Ratchet(newErrs, oldErrs field.ErrorList) field.ErrorList {
	if len(oldErrs) == 0 {
		return newErrs
	}
	old := sets.New[string]()
	for _, e := range oldErrs {
		old.Insert(key(e))
	}
	var out field.ErrorList
	for _, e := range newErrs {
		if !old.Has(key(e)) {
			out = append(out, e)
		}
	}
	return out
}

func key(e *field.Error) string {
	return fmt.Sprintf("%s\x00%s\x00%#v\x00%s", e.Type, e.Field, e.BadValue, e.Detail)
}
