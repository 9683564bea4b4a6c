package plugin_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// An auditor reading `kubectl dsr status` sees, per store, what was derived (counts only), what
// was left alone because it is shared, and what deep verification found outside the mapping.
func TestStatusShowsLinkedData(t *testing.T) {
	ctx := context.Background()
	dr := completed(t, "linked-shown", newSigner(t))
	dr.Status.Stores[0].Derived = []privacyv1alpha1.DerivedIdentifier{{Identifier: "customerId", Values: 1}, {Identifier: "addressId", Values: 2, Shared: 1}}
	dr.Status.Stores[0].Shared = 3
	dr.Status.Stores[0].SharedLocations = []privacyv1alpha1.LocationRecords{{Location: "orders", Records: 2}, {Location: "address", Records: 1}}
	dr.Status.Stores[0].Unmapped = 1
	dr.Status.Stores[0].UnmappedLocations = []privacyv1alpha1.LocationRecords{{Location: "notes.body", Records: 1}}
	dr.Status.Stores[1].Shared = 5
	if err := env.Client.Status().Update(ctx, dr); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "status", "linked-shown", "-n", "audit")
	if code != 0 {
		t.Fatalf("%d %s", code, errOut)
	}
	for _, want := range []string{
		"Derived identifiers (values only in Secret linked-shown-derived):\n  db customerId: 1 value\n  db addressId: 2 values, 1 value shared with others",
		"Shared (also someone else's: left untouched, not remaining):\n  db orders: 2 records\n  db address: 1 record\n  cache: 5 records\n",
		"Unmapped (copies outside the mapping, found by deep verification: map or erase them):\n  db notes.body: 1 record\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}

	ar := &privacyv1alpha1.AccessRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: "linked-copy"},
		Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: "GDPR",
			Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: "ids"}}}}}
	if err := env.Client.Create(ctx, ar); err != nil {
		t.Fatal(err)
	}
	ar.Status.Phase = privacyv1alpha1.PhaseCollecting
	ar.Status.Stores = []privacyv1alpha1.AccessStoreStatus{{StoreProgress: privacyv1alpha1.StoreProgress{Name: "crm", Kind: "DataStore", Type: "postgres", Phase: "Collected",
		Derived: []privacyv1alpha1.DerivedIdentifier{{Identifier: "orderId", Values: 2000}}}, Records: 2001}}
	if err := env.Client.Status().Update(ctx, ar); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(t, "status", "linked-copy", "-n", "audit")
	if code != 0 || !strings.Contains(out, "Derived identifiers (values only in Secret linked-copy-derived):\n  crm orderId: 2000 values\n") {
		t.Errorf("access status: %d %s\n%s", code, errOut, out)
	}

	// A request without linked data prints none of the three sections.
	completed(t, "plain-shown", newSigner(t))
	_, out, _ = run(t, "status", "plain-shown", "-n", "audit")
	for _, absent := range []string{"Derived identifiers", "Shared (", "Unmapped ("} {
		if strings.Contains(out, absent) {
			t.Errorf("%q printed for a request without linked data:\n%s", absent, out)
		}
	}
}
