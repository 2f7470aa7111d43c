package metalsim

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// defaultLifetimes are metal-api's --hmac-*-lifetime defaults.
var defaultLifetimes = map[string]time.Duration{
	metal.AuthTypeView:  30 * time.Second,
	metal.AuthTypeEdit:  30 * time.Second,
	metal.AuthTypeAdmin: 90 * time.Second,
}

// authenticate returns the caller's auth type ("" for a guest) or an error
// that becomes a 403. Like metal-api, an unknown scheme is a guest, and
// future X-Dates are accepted.
func (s *Simulator) authenticate(r *http.Request) (string, error) {
	if s.cfg.DisableAuth {
		return metal.AuthTypeAdmin, nil
	}
	header := r.Header.Get(metal.HeaderAuthorization)
	if header == "" {
		return "", nil
	}
	scheme, cred, _ := strings.Cut(header, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if t, ok := s.cfg.BearerTokens[cred]; ok && cred != "" {
			return t, nil
		}
		return "", errors.New("invalid bearer token")
	case validAuthType(scheme):
		return scheme, s.checkHMAC(r, scheme, cred)
	default:
		return "", nil
	}
}

func (s *Simulator) checkHMAC(r *http.Request, authType, signature string) error {
	key, ok := s.cfg.HMACKeys[authType]
	if !ok || key == "" {
		return errors.New("no hmac key configured for " + authType)
	}
	date := r.Header.Get(metal.HeaderDate)
	ts, err := time.Parse(time.RFC3339, date)
	if err != nil {
		return errors.New("invalid or missing X-Date header")
	}
	lifetime := defaultLifetimes[authType]
	if d, ok := s.cfg.HMACLifetimes[authType]; ok && d.Duration > 0 {
		lifetime = d.Duration
	}
	if s.clock.Now().Sub(ts) > lifetime {
		return errors.New("request is too old: X-Date " + date + " is older than " + lifetime.String())
	}
	if !metal.ValidHMAC([]byte(key), date, r.Method, r.Header.Get(metal.HeaderSalt), signature) {
		return errors.New("invalid hmac")
	}
	return nil
}
