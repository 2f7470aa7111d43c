// Package signing is the one signature scheme Palisade's release artifacts use and the agent's
// self-update verifies: ed25519 over the raw bytes of an artifact, the signature stored base64
// encoded in a detached "<artifact>.sig" file, keys in PEM (PKIX public, PKCS#8 private), so that
// `openssl pkeyutl -verify -rawin` can check an artifact without Palisade's tools.
//
// ed25519 was chosen over a sigstore-style flow because a firewall must verify an update offline:
// one public key shipped in the userdata is all it needs, with no transparency log to reach.
package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// SignatureSuffix and ChecksumSuffix name the detached files beside an artifact.
const (
	SignatureSuffix = ".sig"
	ChecksumSuffix  = ".sha256"
)

// ErrBadSignature is returned when a signature does not match the data and key.
var ErrBadSignature = errors.New("signature does not match")

// GenerateKey returns a new key pair.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// Sign returns the content of the detached signature file for data.
func Sign(priv ed25519.PrivateKey, data []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(priv, data)) + "\n")
}

// Verify checks a detached signature file's content against data.
func Verify(pub ed25519.PublicKey, data, sigFile []byte) error {
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigFile)))
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("signature has %d bytes, want %d", len(sig), ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, data, sig) {
		return ErrBadSignature
	}
	return nil
}

// MarshalPublicKey encodes pub as a PEM "PUBLIC KEY" block.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKey reads a PEM "PUBLIC KEY" block holding an ed25519 key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("no PEM PUBLIC KEY block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, want ed25519", key)
	}
	return pub, nil
}

// MarshalPrivateKey encodes priv as a PEM "PRIVATE KEY" (PKCS#8) block.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a PEM "PRIVATE KEY" (PKCS#8) block holding an ed25519 key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM PRIVATE KEY block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want ed25519", key)
	}
	return priv, nil
}

// ChecksumLine is one line of a sha256sum(1) file for data named name.
func ChecksumLine(data []byte, name string) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]) + "  " + name + "\n"
}

// LookupChecksum finds name's digest in a sha256sum(1) file. A file with a single line and no
// name match is accepted when name is empty.
func LookupChecksum(file []byte, name string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	for _, line := range strings.Split(string(file), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if name != "" && (len(fields) < 2 || strings.TrimPrefix(fields[1], "*") != name) {
			continue
		}
		raw, err := hex.DecodeString(fields[0])
		if err != nil || len(raw) != sha256.Size {
			return out, fmt.Errorf("checksum for %q is not a sha256 hex digest", name)
		}
		copy(out[:], raw)
		return out, nil
	}
	return out, fmt.Errorf("no checksum for %q", name)
}

// VerifyChecksum checks data against name's digest in a sha256sum(1) file.
func VerifyChecksum(file, data []byte, name string) error {
	want, err := LookupChecksum(file, name)
	if err != nil {
		return err
	}
	if sha256.Sum256(data) != want {
		return fmt.Errorf("sha256 of %q does not match its checksum", name)
	}
	return nil
}
