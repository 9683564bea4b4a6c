package controllers_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// Deep verification over the three stores: the subject's data is gone everywhere, so nothing
// remains; the S3 keys outside the mapping whose names hold one of the subject's values
// (users/1.json and users/11/ hold the customer id and an order id as a whole segment, the .bak
// copy the avatar id) are unmapped findings by bucket, never remaining, with one Warning event that
// names the buckets and no value.
func TestLinkedThreeStoresDeepVerification(t *testing.T) {
	f := startThreeStores(t)
	ctx := context.Background()
	// The look-alike event holds the number 11, not the string "11": deep verification of a mapped
	// collection counts a string equal to any value of the subject, and "11" is one of the
	// subject's order ids, so the bystander's event would count as the subject's remaining data
	// and the request would never verify (a known limitation of deep verification of match
	// fields with short derived values, in the SQL stores too).
	if _, err := f.events.UpdateOne(ctx, bson.D{{Key: "_id", Value: "e4"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "who.customerId", Value: 11}}}}); err != nil {
		t.Fatal(err)
	}
	f.mongoBystanders["events/e4"] = f.document(t, f.events, "e4")

	create(t, deletionRequest(f.ns, "erase-jane", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{Deep: true}
	}))
	dr := waitDR(t, f.ns, "erase-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, 2*settle)
	if !isTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
		t.Errorf("conditions: %s", conditionsString(dr.Status.Conditions))
	}
	if left := f.objectContents(t, isThreeStoresSubjectObject); len(left) != 0 {
		t.Errorf("s3: %d of the subject's object versions left", len(left))
	}
	f.assertBystandersIntact(t)
	for _, name := range []string{"shop", "docs"} {
		if st := storeStatus(t, dr, name); st.Remaining != 0 || st.Unmapped != 0 {
			t.Errorf("store %s: remaining %d, unmapped %d %+v", name, st.Remaining, st.Unmapped, st.UnmappedLocations)
		}
	}
	st := storeStatus(t, dr, "files")
	want := []privacyv1alpha1.LocationRecords{{Location: f.avatars + " (key names)", Records: 1}, {Location: f.uploads + " (key names)", Records: 2}}
	got := slices.Clone(st.UnmappedLocations)
	slices.SortFunc(got, func(a, b privacyv1alpha1.LocationRecords) int { return strings.Compare(a.Location, b.Location) })
	if st.Remaining != 0 || st.Unmapped != 3 || !slices.Equal(got, want) {
		t.Errorf("files: remaining %d, unmapped %d %+v, want 3 %+v", st.Remaining, st.Unmapped, got, want)
	}
	eventually(t, settle, func() (bool, string) {
		evs, err := eventsAbout(f.ns, "erase-jane")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Reason == privacyv1alpha1.ReasonUnmappedData && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, f.uploads) {
				return true, ""
			}
		}
		return false, "no UnmappedData warning naming the bucket: " + describeEvents(evs)
	})
	assertNoIdentifiersIn(t, f.ns, dr)
	f.assertNoValuesIn(t, []string{subjectAvatar, `"10"`, `"11"`, "users/1"}, dr)
}
