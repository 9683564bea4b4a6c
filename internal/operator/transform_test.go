package operator

import (
	"encoding/json"
	"fmt"
	"testing"
	"unsafe"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// decoded returns a finished deletion request as the cache gets it: decoded from JSON, so that
// its lists have the capacity the decoder grew them to.
func decoded(t *testing.T, name string) *privacyv1alpha1.DeletionRequest {
	t.Helper()
	now := metav1.Now()
	dr := privacyv1alpha1.DeletionRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "portal"}}},
	}
	for _, typ := range []string{"Accepted", "Erased", "Verified", "DeadlineExceeded", "Ready"} {
		dr.Status.Conditions = append(dr.Status.Conditions, metav1.Condition{Type: typ, Status: metav1.ConditionTrue,
			Reason: typ + "Reason", Message: "the same message for " + typ, LastTransitionTime: now, ObservedGeneration: 1})
	}
	for _, s := range []string{"pg", "maria", "redis"} {
		dr.Status.Stores = append(dr.Status.Stores, privacyv1alpha1.DeletionStoreStatus{StoreProgress: privacyv1alpha1.StoreProgress{Name: s, Kind: privacyv1alpha1.KindDataStore,
			Type: privacyv1alpha1.StoreTypePostgres, Phase: privacyv1alpha1.StoreVerified}, Erased: 1, VerifiedAt: &now})
	}
	dr.Status.Receipt = &privacyv1alpha1.ReceiptReference{ConfigMapName: name + "-receipt", KeyID: "0123456789abcdef"}
	out := roundTrip(t, &dr)
	if cap(out.Status.Conditions) == len(out.Status.Conditions) {
		t.Fatal("the decoder did not over-allocate: the test proves nothing")
	}
	return out
}

// roundTrip encodes and decodes obj, as the cache receives it from a watch.
func roundTrip[T any](t *testing.T, obj *T) *T {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCompactRequestKeepsValuesAndSharesStrings(t *testing.T) {
	a, b := decoded(t, "a"), decoded(t, "b")
	want := a.DeepCopy()
	want.ManagedFields = nil

	for _, dr := range []*privacyv1alpha1.DeletionRequest{a, b} {
		if _, err := compactRequest(dr); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(a, want) {
		t.Errorf("values changed:\n got %+v\nwant %+v", a, want)
	}
	if cap(a.Status.Conditions) != len(a.Status.Conditions) || cap(a.Status.Stores) != len(a.Status.Stores) {
		t.Errorf("lists not trimmed: conditions %d/%d, stores %d/%d",
			len(a.Status.Conditions), cap(a.Status.Conditions), len(a.Status.Stores), cap(a.Status.Stores))
	}
	same := func(what, x, y string) {
		if unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s %q is held twice", what, x)
		}
	}
	for i := range a.Status.Conditions {
		same("condition message", a.Status.Conditions[i].Message, b.Status.Conditions[i].Message)
		same("condition reason", a.Status.Conditions[i].Reason, b.Status.Conditions[i].Reason)
	}
	for i := range a.Status.Stores {
		same("store name", a.Status.Stores[i].Name, b.Status.Stores[i].Name)
		same("store phase", string(a.Status.Stores[i].Phase), string(b.Status.Stores[i].Phase))
	}
	if unsafe.StringData(a.Status.Receipt.ConfigMapName) == unsafe.StringData(b.Status.Receipt.ConfigMapName) {
		t.Error("different strings share memory")
	}
}

func TestInternerSharesShortStrings(t *testing.T) {
	first, again := fmt.Sprintf("deadline %d", 0), fmt.Sprintf("deadline %d", 0)
	if unsafe.StringData(shared.intern(first)) != unsafe.StringData(shared.intern(again)) {
		t.Error("equal short strings are not shared")
	}
	long := string(make([]byte, maxInternedLen+1))
	if got := shared.intern(long); unsafe.StringData(got) != unsafe.StringData(long) {
		t.Error("a long string was interned")
	}
}

func TestCompactRequestKeepsAccessRequestValues(t *testing.T) {
	ar := privacyv1alpha1.AccessRequest{ObjectMeta: metav1.ObjectMeta{Name: "ar", Namespace: "ns"}}
	ar.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Completed", Message: "export delivered"}}
	ar.Status.Stores = []privacyv1alpha1.AccessStoreStatus{{StoreProgress: privacyv1alpha1.StoreProgress{Name: "pg", Kind: privacyv1alpha1.KindDataStore, Type: privacyv1alpha1.StoreTypePostgres}}}
	got := roundTrip(t, &ar)
	if _, err := compactRequest(got); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(got, &ar) {
		t.Errorf("values changed:\n got %+v\nwant %+v", got, ar)
	}
}
