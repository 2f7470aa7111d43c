package metal

import (
	"errors"
	"fmt"
	"net/http"
)

// APIError is a non-2xx answer from metal-api.
type APIError struct {
	// Op is the operation name, e.g. OpFirewallAllocate.
	Op         string
	StatusCode int
	Message    string
	// RouteLevel is true when the body was not metal-api's JSON error but the
	// router's plain text, e.g. "404: Page Not Found" for a wrong base path.
	// Such a 404 does not mean an entity is gone, so IsNotFound ignores it.
	RouteLevel bool
}

func (e *APIError) Error() string {
	return fmt.Sprintf("metal-api %s: %d %s: %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// StatusCode returns the HTTP status of an APIError in err's chain, or 0.
func StatusCode(err error) int {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}

func hasStatus(err error, code int) bool { return StatusCode(err) == code }

// IsNotFound reports whether metal-api said the entity does not exist.
// Router-level 404s (wrong URL) are deliberately not included.
func IsNotFound(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound && !apiErr.RouteLevel
}

// IsConflict reports a 409, e.g. an optimistic-locking conflict on update.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsUnprocessable reports a 422, e.g. "no machine available".
func IsUnprocessable(err error) bool { return hasStatus(err, http.StatusUnprocessableEntity) }

// IsBadRequest reports a 400, e.g. an unknown image on allocate.
func IsBadRequest(err error) bool { return hasStatus(err, http.StatusBadRequest) }

// IsForbidden reports a 403: wrong key, stale X-Date or missing permission.
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsUnsupportedMediaType reports a 415 (missing JSON Content-Type).
func IsUnsupportedMediaType(err error) bool {
	return hasStatus(err, http.StatusUnsupportedMediaType)
}

// IsServerError reports any 5xx.
func IsServerError(err error) bool { return StatusCode(err) >= 500 }
