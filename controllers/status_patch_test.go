package controllers

import (
	"encoding/json"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// The first status write sends the whole status instead of a computed diff: applied to the object,
// both give the same object, and both carry the resourceVersion precondition.
func TestFirstStatusPatchEqualsTheDiff(t *testing.T) {
	before := &privacyv1alpha1.DeletionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "jane", ResourceVersion: "42", UID: "u"},
		Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: privacyv1alpha1.RegulationGDPR}}}
	after := before.DeepCopy()
	now := metav1.NewTime(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	after.Status.Phase = privacyv1alpha1.PhaseCompleted
	after.Status.SubjectDigest = "sha256:abc"
	after.Status.ReceivedAt = &now
	after.Status.Conditions = []metav1.Condition{{Type: privacyv1alpha1.ConditionVerified, Status: metav1.ConditionTrue, Reason: "Verified", LastTransitionTime: now}}
	after.Status.Stores = []privacyv1alpha1.DeletionStoreStatus{{StoreProgress: privacyv1alpha1.StoreProgress{Name: "crm", Kind: "DataStore",
		Phase: privacyv1alpha1.StoreVerified}, Erased: 7}}

	whole := statusPatch(before, before.Status, after.Status)
	if _, ok := whole.(wholeStatusPatch); !ok {
		t.Fatalf("from an empty status: want the whole status, got %T", whole)
	}
	diff := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	original, err := json.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	applied := map[string]*privacyv1alpha1.DeletionRequest{}
	for name, p := range map[string]client.Patch{"whole": whole, "diff": diff} {
		data, err := p.Data(after)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(data, &meta); err != nil || meta.Metadata.ResourceVersion != "42" {
			t.Errorf("%s patch: want the resourceVersion 42 as precondition, got %q (%v)", name, meta.Metadata.ResourceVersion, err)
		}
		out, err := jsonpatch.MergePatch(original, data)
		if err != nil {
			t.Fatal(err)
		}
		var got privacyv1alpha1.DeletionRequest
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		applied[name] = &got
	}
	if !equality.Semantic.DeepEqual(applied["whole"], applied["diff"]) {
		t.Errorf("the whole status and the diff give different objects:\n%+v\n%+v", applied["whole"], applied["diff"])
	}
	if !equality.Semantic.DeepEqual(applied["whole"].Status, after.Status) {
		t.Errorf("status after the whole patch: %+v, want %+v", applied["whole"].Status, after.Status)
	}

	// Once the status holds something, only the diff can remove what the reconcile removed.
	if p := statusPatch(after, after.Status, before.Status); p.Type() != diff.Type() {
		t.Fatalf("patch type %s", p.Type())
	} else if _, ok := p.(wholeStatusPatch); ok {
		t.Error("from a status that holds something: want the diff, got the whole status")
	}
}
