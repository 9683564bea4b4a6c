package controllers

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	fakeconnector "github.com/dsr-operator/dsr-operator/internal/connector/fake"
	"github.com/dsr-operator/dsr-operator/internal/testbuilders"
)

// A store's erasure leaves shared records and its deep verification finds unmapped copies: the
// status records both by location, one Warning event names the columns (never a value), and a
// reconcile that finds the same again raises none.
func TestSharedAndUnmappedReachStatusAndOneWarning(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(logicNow)
	deps := logicDeps(t, clk)
	r := &DeletionRequestReconciler{Dependencies: *deps}
	dr := testbuilders.DeletionRequest("ns", "linked", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{Deep: true}
	})
	dr.Status.Phase = privacyv1alpha1.PhaseErasing
	dr.Status.Stores = []privacyv1alpha1.DeletionStoreStatus{testbuilders.DeletionStore("shop", privacyv1alpha1.StorePending)}
	shared := []connector.LocationCount{{Location: "public.orders", Records: 2}}
	unmapped := []connector.LocationCount{{Location: "public.audit_log.payload", Records: 1}}
	verify := fakeconnector.Result{Verify: &connector.VerifyResult{Shared: 2, SharedLocations: shared, Unmapped: 1, UnmappedLocations: unmapped}}
	cl := fakeconnector.NewClient().
		On(fakeconnector.OpPlan, fakeconnector.Result{Erase: &connector.EraseResult{Erased: 3, Shared: 2, SharedLocations: shared}}).
		On(fakeconnector.OpErase, fakeconnector.Result{Erase: &connector.EraseResult{Erased: 3, Shared: 2, SharedLocations: shared}}).
		On(fakeconnector.OpVerify, verify, verify)

	before := dr.DeepCopy()
	s := deletionScopeFor(t, deps, dr, map[string]*fakeconnector.Client{"shop": cl})
	for range 2 { // plan, then erase and verify
		if _, err := r.workOnDueStores(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	st := dr.Status.Stores[0]
	if st.Phase != privacyv1alpha1.StoreVerified || st.Erased != 3 || st.Shared != 2 || st.Unmapped != 1 {
		t.Fatalf("store: %+v", st)
	}
	if !slices.Equal(st.SharedLocations, []privacyv1alpha1.LocationRecords{{Location: "public.orders", Records: 2}}) ||
		!slices.Equal(st.UnmappedLocations, []privacyv1alpha1.LocationRecords{{Location: "public.audit_log.payload", Records: 1}}) {
		t.Errorf("locations: shared %+v, unmapped %+v", st.SharedLocations, st.UnmappedLocations)
	}

	s.facts.unmapped = newUnmappedFindings(before, dr)
	deriveDeletionStatus(dr, &s.facts, nil, s.effect)
	var warnings []pendingEvent
	for _, e := range s.effect.events {
		if e.reason == privacyv1alpha1.ReasonUnmappedData {
			warnings = append(warnings, e)
		}
	}
	if len(warnings) != 1 || warnings[0].typ != corev1.EventTypeWarning ||
		!strings.Contains(warnings[0].note, "public.audit_log.payload (1)") || !strings.Contains(warnings[0].note, "DataStore shop") {
		t.Fatalf("UnmappedData events: %+v", warnings)
	}
	if strings.Contains(warnings[0].note, logicIDs["email"]) {
		t.Error("the event holds the identifier")
	}
	if !isConditionTrue(dr, privacyv1alpha1.ConditionVerified) {
		t.Errorf("unmapped findings are not remaining records; Verified: %+v", dr.Status.Conditions)
	}
	if again := newUnmappedFindings(dr.DeepCopy(), dr); len(again) != 0 {
		t.Errorf("the same findings again raise %v", again)
	}
}

func isConditionTrue(dr *privacyv1alpha1.DeletionRequest, typ string) bool {
	for _, c := range dr.Status.Conditions {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// countingReader counts the reads of each object it is asked for.
type countingReader struct {
	client.Reader
	gets map[string]int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets[key.Name]++
	return c.Reader.Get(ctx, key, obj, opts...)
}

// A request whose stores derived nothing never reads a derived values Secret: reading the
// identifiers again costs one GET. A linked request reads its derived values with them.
func TestReadDerivedOnlyForLinkedRequests(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(logicNow)
	values, _ := json.Marshal(map[string][]string{"customerId": {"1"}})
	for _, linked := range []bool{false, true} {
		dr := testbuilders.DeletionRequest("ns", "plain", "jane")
		dr.UID = "uid-1"
		dr.Status.Phase = privacyv1alpha1.PhaseErasing
		dr.Status.SubjectDigest = logicDigest(t)
		st := testbuilders.DeletionStore("db", privacyv1alpha1.StoreErasing)
		if linked {
			st.Derived = []privacyv1alpha1.DerivedIdentifier{{Identifier: "customerId", Values: 1}}
		}
		dr.Status.Stores = []privacyv1alpha1.DeletionStoreStatus{st}
		derived := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain-derived",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: privacyv1alpha1.GroupVersion.String(), Kind: "DeletionRequest",
				Name: "plain", UID: dr.UID, Controller: ptrBool(true)}}},
			Data: map[string][]byte{derivedValuesKey: values, derivedSharedKey: []byte("{}")}}
		deps := logicDeps(t, clk, identifiersSecret("ns", "jane"), derived)
		reader := &countingReader{Reader: deps.APIReader, gets: map[string]int{}}
		deps.APIReader = reader
		s := deletionScopeFor(t, deps, dr, nil)
		s.progress = func() []*privacyv1alpha1.StoreProgress { return deletionProgress(dr) }
		if ok, err := s.readIdentifiers(context.Background()); !ok || err != nil {
			t.Fatalf("linked %v: %v, %v", linked, ok, err)
		}
		switch {
		case !linked && (reader.gets["plain-derived"] != 0 || s.values != nil):
			t.Errorf("a request without linked data read the derived values Secret %d times", reader.gets["plain-derived"])
		case linked && (reader.gets["plain-derived"] != 1 || !s.values.Has("customerId", "1")):
			t.Errorf("a linked request read the derived values %d times and has %d values", reader.gets["plain-derived"], s.values.Count())
		}
	}
}

func ptrBool(b bool) *bool { return &b }

// A store's derived identifiers count, per identifier it provides, the values that are the
// subject's alone and those that turned out shared anywhere; an identifier it provides but found
// no value of is listed with zero.
func TestDerivedCountsPerStore(t *testing.T) {
	d := &storeDerivation{names: []string{"addressId", "customerId", "orderId"},
		values: connector.NewValueSet(connector.Values{"customerId": {"1"}, "addressId": {"7", "8"}}),
		shared: connector.NewValueSet(connector.Values{"addressId": {"9"}})}
	got := d.counts(connector.NewValueSet(connector.Values{"addressId": {"8", "9"}}))
	want := []privacyv1alpha1.DerivedIdentifier{
		{Identifier: "addressId", Values: 1, Shared: 2},
		{Identifier: "customerId", Values: 1},
		{Identifier: "orderId"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("counts %+v, want %+v", got, want)
	}
}
