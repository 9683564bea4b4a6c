package plugin_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

// A receipt of linked data names, per store, the shared records left untouched and the unmapped
// copies a deep verification found, with their locations; auditors see them on verification.
func TestReceiptVerifyShowsSharedAndUnmapped(t *testing.T) {
	signer := newSigner(t)
	now := time.Now().UTC().Truncate(time.Second)
	rc := &receipt.Receipt{Request: receipt.RequestRef{APIVersion: "privacy.dsr.dev/v1alpha1", Kind: "DeletionRequest", Namespace: "audit", Name: "linked", UID: "u-1"},
		SubjectDigest: digest, Regulation: "GDPR", ReceivedAt: now, Deadline: now.Add(time.Hour), CompletedAt: now,
		Stores: []receipt.Store{
			{Kind: "DataStore", Name: "shop", Type: "postgres", Erased: 9, VerifiedAt: now,
				Shared: 2, SharedLocations: []receipt.LocationCount{{Location: "public.orders", Records: 2}},
				Unmapped: 1, UnmappedLocations: []receipt.LocationCount{{Location: "public.audit_log.payload", Records: 1}}},
			{Kind: "DataStore", Name: "cache", Type: "redis", Erased: 3, VerifiedAt: now},
		}}
	signed, err := signer.Sign(rc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file, sig, key := filepath.Join(dir, "receipt.json"), filepath.Join(dir, "receipt.sig"), filepath.Join(dir, "key.pem")
	for path, data := range map[string][]byte{file: signed.JSON, sig: []byte(receipt.EncodeSignature(signed.Signature)), key: receipt.PublicKeyPEM(signer.PublicKey())} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runOffline(t, "receipt", "verify", "--file", file, "--signature", sig, "--public-key", key)
	if code != 0 || !strings.HasPrefix(out, "receipt verified") {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	for _, want := range []string{
		"shared: DataStore shop left 2 records untouched that are also someone else's (public.orders 2)",
		"unmapped: DataStore shop holds 1 copies of the subject's identifiers outside its mapping (public.audit_log.payload 1)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DataStore cache left") || strings.Contains(out, "DataStore cache holds") {
		t.Errorf("a store without linked findings is listed:\n%s", out)
	}
}
