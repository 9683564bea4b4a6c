package receipt

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

func newKey(t *testing.T) *Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return NewSigner(k)
}

func signAt(t *testing.T, s *Signer, at time.Time) *Signed {
	t.Helper()
	r := &Receipt{Request: RequestRef{Kind: "DeletionRequest", Name: "r", UID: "u"}, IssuedAt: at}
	signed, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestRotationKeepsOldReceiptsVerifiable: a key set carried through two rotations (what publish
// does on each start) verifies receipts of every key in its own period and nothing else.
func TestRotationKeepsOldReceiptsVerifiable(t *testing.T) {
	first, second, third := newKey(t), newKey(t), newKey(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ks KeySet
	ks, _ = ks.withCurrent(first.PublicKey(), t0)
	beforeRotation := signAt(t, first, t0.Add(24*time.Hour))
	ks, _ = ks.withCurrent(second.PublicKey(), t0.Add(48*time.Hour))
	afterRotation := signAt(t, second, t0.Add(72*time.Hour))
	ks, changed := ks.withCurrent(third.PublicKey(), t0.Add(96*time.Hour))
	if !changed || len(ks) != 3 {
		t.Fatalf("key set after two rotations: %+v", ks)
	}
	if _, again := ks.withCurrent(third.PublicKey(), t0.Add(100*time.Hour)); again {
		t.Error("a restart with the same key changed the key set")
	}
	// Offline: the exported keys.json, parsed back.
	parsed, err := ParseKeySet(ks.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Signed{"before": beforeRotation, "after": afterRotation} {
		if _, err := VerifyWithKeySet(s.JSON, []byte(EncodeSignature(s.Signature)), parsed); err != nil {
			t.Errorf("%s the rotation: %v", name, err)
		}
	}
	if parsed[0].NotAfter == nil || !parsed[0].NotAfter.Equal(t0.Add(48*time.Hour)) || parsed[2].NotAfter != nil {
		t.Errorf("validity periods: %+v", parsed)
	}

	// A retired key signing long after it was replaced (a stolen key, say) does not verify.
	late := signAt(t, first, t0.Add(30*24*time.Hour))
	if _, err := VerifyWithKeySet(late.JSON, []byte(EncodeSignature(late.Signature)), parsed); err == nil || !strings.Contains(err.Error(), "outside the validity") {
		t.Errorf("late receipt of a retired key: %v", err)
	}
	// A key never published does not verify either.
	stranger := signAt(t, newKey(t), t0.Add(72*time.Hour))
	if _, err := VerifyWithKeySet(stranger.JSON, []byte(EncodeSignature(stranger.Signature)), parsed); err == nil || !strings.Contains(err.Error(), "not in the key set") {
		t.Errorf("unknown key: %v", err)
	}
	// A receipt claiming another key's id fails the signature check.
	forged := *afterRotation
	forged.Signature = signAt(t, third, t0.Add(72*time.Hour)).Signature
	if _, err := VerifyWithKeySet(forged.JSON, []byte(EncodeSignature(forged.Signature)), parsed); err == nil {
		t.Error("a signature by another key verified")
	}
}

func TestParseKeySetRefusesMismatchedIDs(t *testing.T) {
	a, b := newKey(t), newKey(t)
	ks := KeySet{{KeyID: a.KeyID(), PublicKey: string(PublicKeyPEM(b.PublicKey())), NotBefore: time.Now()}}
	if _, err := ParseKeySet(ks.Marshal()); err == nil {
		t.Error("a key set entry naming another key was accepted")
	}
}
