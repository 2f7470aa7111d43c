package signing

import (
	"errors"
	"testing"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	priv2, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("agent binary")
	sig := Sign(priv2, data)
	if err := Verify(pub2, data, sig); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}
	if err := Verify(pub2, []byte("tampered binary"), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered data: got %v, want ErrBadSignature", err)
	}
	other, _, _ := GenerateKey()
	if err := Verify(other, data, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other key: got %v, want ErrBadSignature", err)
	}
	for _, bad := range [][]byte{nil, []byte("!!"), []byte("AAAA")} {
		if err := Verify(pub2, data, bad); err == nil {
			t.Fatalf("malformed signature %q accepted", bad)
		}
	}
	if _, err := ParsePublicKey(privPEM); err == nil {
		t.Fatal("private key block accepted as public key")
	}
}

func TestChecksums(t *testing.T) {
	a, b := []byte("a"), []byte("b")
	file := []byte(ChecksumLine(a, "agent-amd64") + ChecksumLine(b, "agent-arm64"))
	if err := VerifyChecksum(file, a, "agent-amd64"); err != nil {
		t.Fatal(err)
	}
	if err := VerifyChecksum(file, b, "agent-arm64"); err != nil {
		t.Fatal(err)
	}
	if err := VerifyChecksum(file, a, "agent-arm64"); err == nil {
		t.Fatal("wrong data accepted")
	}
	if err := VerifyChecksum(file, a, "missing"); err == nil {
		t.Fatal("missing name accepted")
	}
	if err := VerifyChecksum([]byte(ChecksumLine(a, "x")), a, ""); err != nil {
		t.Fatalf("single line without name: %v", err)
	}
}
