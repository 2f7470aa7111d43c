package metal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// Header names used by metal-api's HMAC authentication.
const (
	HeaderAuthorization = "Authorization"
	HeaderDate          = "X-Date"
	HeaderSalt          = "X-Data-Salt"
)

// XDateFormat is the X-Date layout: UTC, RFC3339 at second precision.
const XDateFormat = "2006-01-02T15:04:05Z"

// HMACSignature returns the lowercase hex HMAC-SHA256 metal-api expects:
// key = the shared secret, message = date ‖ METHOD ‖ salt. Path and body are
// not signed.
func HMACSignature(key []byte, date, method, salt string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(date))
	mac.Write([]byte(strings.ToUpper(method)))
	mac.Write([]byte(salt))
	return hex.EncodeToString(mac.Sum(nil))
}

// ValidHMAC compares a received signature in constant time.
func ValidHMAC(key []byte, date, method, salt, signature string) bool {
	want := HMACSignature(key, date, method, salt)
	return hmac.Equal([]byte(want), []byte(strings.ToLower(signature)))
}

const saltLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// newSalt returns 24 random ASCII letters, as upstream clients send.
func newSalt() (string, error) {
	b := make([]byte, 24)
	limit := big.NewInt(int64(len(saltLetters)))
	for i := range b {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return "", err
		}
		b[i] = saltLetters[n.Int64()]
	}
	return string(b), nil
}

// hmacHeaders returns the three auth headers for one request.
func hmacHeaders(key []byte, authType, method string, now time.Time) (map[string]string, error) {
	salt, err := newSalt()
	if err != nil {
		return nil, fmt.Errorf("generating salt: %w", err)
	}
	date := now.UTC().Format(XDateFormat)
	return map[string]string{
		HeaderAuthorization: authType + " " + HMACSignature(key, date, method, salt),
		HeaderDate:          date,
		HeaderSalt:          salt,
	}, nil
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
