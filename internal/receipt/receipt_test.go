package receipt_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

var update = flag.Bool("update", false, "rewrite testdata/canonical.golden")

// sample has stores and reasons out of order, a non-UTC zone, sub-second times and characters that
// an HTML-escaping encoder would rewrite.
func sample() *receipt.Receipt {
	at := time.Date(2026, 11, 1, 9, 30, 15, 999, time.FixedZone("CET", 3600))
	return &receipt.Receipt{Version: receipt.Version,
		Request:       receipt.RequestRef{APIVersion: "privacy.dsr.dev/v1alpha1", Kind: "DeletionRequest", Namespace: "shop", Name: "r", UID: "u-1"},
		SubjectDigest: "sha256:00", Regulation: "GDPR", ReceivedAt: at, Deadline: at.Add(30 * 24 * time.Hour), CompletedAt: at.Add(time.Hour),
		IssuedAt: at.Add(time.Hour + time.Minute), KeyID: "0123456789abcdef",
		Stores: []receipt.Store{
			{Kind: "DataStore", Name: "z", Type: "redis", Erased: 1, VerifiedAt: at},
			{Kind: "ClusterDataStore", Name: "a", Type: "postgres", Retained: 2, RetainedReasons: []receipt.RetainedReason{
				{Location: "b", Records: 1, Reason: `<tax> & "law"`}, {Location: "a", Records: 1, Reason: "ünïcode"}}},
			{Kind: "DataStore", Name: "b", Type: "mysql", Masked: 4},
		}}
}

func TestCanonicalGolden(t *testing.T) {
	got, err := receipt.Canonical(sample())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "canonical.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("canonical form changed; receipts already issued keep verifying, but the format is documented:\ngot  %s\nwant %s", got, want)
	}
}

func TestCanonicalIgnoresOrderZoneAndNil(t *testing.T) {
	want, err := receipt.Canonical(sample())
	if err != nil {
		t.Fatal(err)
	}
	r := sample()
	r.Stores[0], r.Stores[2] = r.Stores[2], r.Stores[0]
	rr := r.Stores[1].RetainedReasons
	rr[0], rr[1] = rr[1], rr[0]
	r.ReceivedAt = r.ReceivedAt.UTC().Add(500 * time.Millisecond)
	r.Stores[0].RetainedReasons = []receipt.RetainedReason{} // empty instead of nil
	got, err := receipt.Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("equivalent receipts canonicalise differently:\n%s\n%s", got, want)
	}
	// Canonical must not reorder the caller's slices.
	if s := sample(); s.Stores[0].Name != "z" || s.Stores[1].RetainedReasons[0].Location != "b" {
		t.Fatal("sample changed")
	}
	orig := sample()
	if _, err := receipt.Canonical(orig); err != nil {
		t.Fatal(err)
	}
	if orig.Stores[0].Name != "z" || orig.Stores[1].RetainedReasons[0].Location != "b" || orig.ReceivedAt.Nanosecond() != 999 {
		t.Errorf("Canonical modified its argument: %+v", orig)
	}
	if _, err := receipt.Canonical(nil); err == nil {
		t.Error("nil receipt accepted")
	}
}

func TestCanonicalNoStoresIsEmptyList(t *testing.T) {
	r := sample()
	r.Stores = nil
	got, err := receipt.Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte(`"stores":[]`)) {
		t.Errorf("want an empty list: %s", got)
	}
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestKeyIDIsSHA256OfRawPublicKey(t *testing.T) {
	priv := newKey(t)
	pub := priv.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	want := hex.EncodeToString(sum[:])[:16]
	if got := receipt.NewSigner(priv).KeyID(); got != want {
		t.Errorf("key id %s, want %s", got, want)
	}
}

func TestSignFillsInAndRoundTrips(t *testing.T) {
	s := receipt.NewSigner(newKey(t))
	r := sample()
	r.Version, r.KeyID, r.IssuedAt = "", "", time.Time{}
	before := time.Now().Add(-time.Second)
	signed, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	if r.KeyID != s.KeyID() || signed.KeyID != s.KeyID() || r.Version != receipt.Version {
		t.Errorf("key id %q/%q, version %q", r.KeyID, signed.KeyID, r.Version)
	}
	if r.IssuedAt.Before(before) || r.IssuedAt.Nanosecond() != 0 || r.IssuedAt.Location() != time.UTC {
		t.Errorf("issuedAt %v: want now, UTC, whole seconds", r.IssuedAt)
	}
	sum := sha256.Sum256(signed.JSON)
	if signed.SHA256 != "sha256:"+hex.EncodeToString(sum[:]) || receipt.Digest(signed.JSON) != signed.SHA256 {
		t.Errorf("digest %s", signed.SHA256)
	}
	canon, _ := receipt.Canonical(r)
	if !bytes.Equal(canon, signed.JSON) {
		t.Errorf("signed bytes are not the canonical form:\n%s\n%s", signed.JSON, canon)
	}

	got, err := receipt.Verify(signed.JSON, []byte(receipt.EncodeSignature(signed.Signature)+"\n"), s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	again, err := receipt.Canonical(got)
	if err != nil || !bytes.Equal(again, signed.JSON) {
		t.Errorf("a verified receipt does not canonicalise to the signed bytes (%v):\n%s\n%s", err, again, signed.JSON)
	}
	if got.Request.UID != "u-1" || len(got.Stores) != 3 || got.Stores[0].Kind != "ClusterDataStore" || got.Stores[0].RetainedReasons[1].Reason != `<tax> & "law"` {
		t.Errorf("parsed %+v", got)
	}
	if _, err := s.Sign(nil); err == nil {
		t.Error("nil receipt signed")
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	s := receipt.NewSigner(newKey(t))
	signed, err := s.Sign(sample())
	if err != nil {
		t.Fatal(err)
	}
	sig := []byte(receipt.EncodeSignature(signed.Signature))
	for i := range signed.JSON {
		bad := bytes.Clone(signed.JSON)
		bad[i] ^= 1
		if _, err := receipt.Verify(bad, sig, s.PublicKey()); !errors.Is(err, receipt.ErrSignatureMismatch) {
			t.Fatalf("byte %d of the receipt flipped: %v", i, err)
		}
	}
	for i := range signed.Signature {
		bad := bytes.Clone(signed.Signature)
		bad[i] ^= 0x80
		if _, err := receipt.Verify(signed.JSON, []byte(receipt.EncodeSignature(bad)), s.PublicKey()); !errors.Is(err, receipt.ErrSignatureMismatch) {
			t.Fatalf("byte %d of the signature flipped: %v", i, err)
		}
	}
	other := receipt.NewSigner(newKey(t))
	if _, err := receipt.Verify(signed.JSON, sig, other.PublicKey()); !errors.Is(err, receipt.ErrSignatureMismatch) {
		t.Errorf("another key: %v", err)
	}
	if _, err := receipt.Verify(append(bytes.Clone(signed.JSON), '\n'), sig, s.PublicKey()); !errors.Is(err, receipt.ErrSignatureMismatch) {
		t.Errorf("a trailing newline must not verify: %v", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	priv := newKey(t)
	pub := priv.Public().(ed25519.PublicKey)
	signRaw := func(data []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(priv, data))) }
	good, err := receipt.NewSigner(priv).Sign(sample())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		data, sig []byte
		want      string
	}{
		{"signature not base64", good.JSON, []byte("not*base64"), "not valid base64"},
		{"signature too short", good.JSON, []byte(base64.StdEncoding.EncodeToString([]byte("short"))), "is 5 bytes"},
		{"empty signature", good.JSON, nil, "is 0 bytes"},
		{"signed but not JSON", []byte("hello"), signRaw([]byte("hello")), "not valid receipt JSON"},
		{"signed but unknown field", []byte(`{"version":"privacy.dsr.dev/receipt/v1","extra":1}`), signRaw([]byte(`{"version":"privacy.dsr.dev/receipt/v1","extra":1}`)), "not valid receipt JSON"},
		{"signed but other version", []byte(`{"version":"v0"}`), signRaw([]byte(`{"version":"v0"}`)), "unknown receipt version"},
		{"signed but names another key", []byte(`{"version":"privacy.dsr.dev/receipt/v1","keyID":"ffffffffffffffff"}`),
			signRaw([]byte(`{"version":"privacy.dsr.dev/receipt/v1","keyID":"ffffffffffffffff"}`)), "names key ffffffffffffffff"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := receipt.Verify(c.data, c.sig, pub)
			if err == nil || errors.Is(err, receipt.ErrSignatureMismatch) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q that is not a signature mismatch", err, c.want)
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	priv := newKey(t)
	pub := priv.Public().(ed25519.PublicKey)
	got, err := receipt.ParsePublicKey(receipt.PublicKeyPEM(pub))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("%v", err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	for name, data := range map[string][]byte{
		"garbage":     []byte("garbage"),
		"private key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"rsa key":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER}),
		"bad DER":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}),
	} {
		if _, err := receipt.ParsePublicKey(data); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestConfigMapName(t *testing.T) {
	if got := receipt.ConfigMapName("erase-jane"); got != "erase-jane-receipt" {
		t.Errorf("got %s", got)
	}
}
