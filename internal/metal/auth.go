package metal

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-openapi/runtime"
	"github.com/go-openapi/strfmt"
	"github.com/metal-stack/security"
	"k8s.io/utils/clock"
)

// authWriter signs each request as metal-go's driver does: metal-stack's
// HMAC scheme (X-Date, X-Data-Salt and "Authorization: <type> <mac>") for a
// key, else the bearer token, else nothing. X-Date comes from clk so tests
// can share the simulator's fake clock.
func authWriter(hmacKey, authType, bearer string, clk clock.PassiveClock) runtime.ClientAuthInfoWriter {
	switch {
	case hmacKey != "":
		auth := security.NewHMACAuth(authType, []byte(hmacKey))
		return runtime.ClientAuthInfoWriterFunc(func(req runtime.ClientRequest, _ strfmt.Registry) error {
			auth.AddAuthToClientRequest(req, clk.Now())
			return nil
		})
	case bearer != "":
		return runtime.ClientAuthInfoWriterFunc(func(req runtime.ClientRequest, _ strfmt.Registry) error {
			security.AddUserTokenToClientRequest(req, bearer)
			return nil
		})
	}
	return runtime.ClientAuthInfoWriterFunc(func(runtime.ClientRequest, strfmt.Registry) error { return nil })
}

// HMACKeyFromFile reads an HMAC key from a file (e.g. a mounted Secret),
// trimming surrounding whitespace such as a trailing newline.
func HMACKeyFromFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading hmac key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", errors.New("reading hmac key: file " + path + " is empty")
	}
	return key, nil
}
