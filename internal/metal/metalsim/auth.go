package metalsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
	header := r.Header.Get(headerAuthorization)
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
	date := r.Header.Get(headerDate)
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
	if !validHMAC([]byte(key), date, r.Method, r.Header.Get(headerSalt), signature) {
		return errors.New("invalid hmac")
	}
	return nil
}

// Header names of metal-api's HMAC authentication.
const (
	headerAuthorization = "Authorization"
	headerDate          = "X-Date"
	headerSalt          = "X-Data-Salt"
)

// hmacSignature is the server's view of metal-stack's MAC: lowercase hex
// HMAC-SHA256 with the shared key over X-Date ‖ METHOD ‖ salt. Path and body
// are not signed. Clients sign through metal-go (metal-stack/security).
func hmacSignature(key []byte, date, method, salt string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(date))
	mac.Write([]byte(strings.ToUpper(method)))
	mac.Write([]byte(salt))
	return hex.EncodeToString(mac.Sum(nil))
}

// validHMAC compares a received signature in constant time.
func validHMAC(key []byte, date, method, salt, signature string) bool {
	want := hmacSignature(key, date, method, salt)
	return hmac.Equal([]byte(want), []byte(strings.ToLower(signature)))
}
