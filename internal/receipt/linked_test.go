package receipt_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

// A store with linked data states its shared and unmapped records, locations sorted; a store
// without them keeps the bytes receipts had before linked data (TestCanonicalGolden).
func TestCanonicalSharedAndUnmapped(t *testing.T) {
	r := sample()
	r.Stores[0].Shared = 3
	r.Stores[0].SharedLocations = []receipt.LocationCount{{Location: "public.orders", Records: 2}, {Location: "public.address", Records: 1}}
	r.Stores[0].Unmapped = 1
	r.Stores[0].UnmappedLocations = []receipt.LocationCount{{Location: "public.audit_log.payload", Records: 1}}
	got, err := receipt.Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `"verifiedAt":"2026-11-01T08:30:15Z","shared":3,"sharedLocations":[{"location":"public.address","records":1},{"location":"public.orders","records":2}],` +
		`"unmapped":1,"unmappedLocations":[{"location":"public.audit_log.payload","records":1}]}`
	if !strings.Contains(string(got), want) {
		t.Errorf("canonical form:\n%s\nwant it to contain\n%s", got, want)
	}
	if n := strings.Count(string(got), `"shared"`); n != 1 {
		t.Errorf("stores without shared records state them: %d times in %s", n, got)
	}
	if r.Stores[0].SharedLocations[0].Location != "public.orders" {
		t.Error("Canonical reordered the caller's locations")
	}

	// What is signed verifies and reads back the same counts.
	signer := receipt.NewSigner(newKey(t))
	signed, err := signer.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := receipt.Verify(signed.JSON, []byte(receipt.EncodeSignature(signed.Signature)), signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	again, err := receipt.Canonical(back)
	if err != nil || !bytes.Equal(again, signed.JSON) {
		t.Errorf("a verified receipt does not canonicalise to its signed bytes: %v", err)
	}
	var shared, unmapped int64
	for _, s := range back.Stores {
		shared, unmapped = shared+s.Shared, unmapped+s.Unmapped
	}
	if shared != 3 || unmapped != 1 {
		t.Errorf("read back shared %d, unmapped %d", shared, unmapped)
	}
}
