package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/subject"
	"github.com/dsr-operator/dsr-operator/internal/testbuilders"
)

type wantCondition struct {
	typ    string
	status metav1.ConditionStatus
	reason string
}

func checkConditions(t *testing.T, conds []metav1.Condition, want []wantCondition) {
	t.Helper()
	for _, w := range want {
		c := meta.FindStatusCondition(conds, w.typ)
		if c == nil || c.Status != w.status || c.Reason != w.reason {
			t.Errorf("%s = %+v, want %s/%s", w.typ, c, w.status, w.reason)
		}
	}
}

func TestDeletionStatusDerivation(t *testing.T) {
	past := ptrTime(logicNow.Add(-time.Hour))
	verified := func(name string) privacyv1alpha1.DeletionStoreStatus {
		return testbuilders.DeletionStore(name, privacyv1alpha1.StoreVerified)
	}
	cases := []struct {
		name      string
		phase     privacyv1alpha1.RequestPhase
		stores    []privacyv1alpha1.DeletionStoreStatus
		dryRun    bool
		deadline  *metav1.Time
		facts     requestFacts
		reverify  *reverificationOutcome
		want      []wantCondition
		noCond    string
		wantEvent string
	}{{
		name: "receipt not issued stays on Ready", phase: privacyv1alpha1.PhaseVerifying,
		stores: []privacyv1alpha1.DeletionStoreStatus{verified("a"), verified("b")},
		facts:  requestFacts{blocked: &blockingFailure{privacyv1alpha1.ReasonReceiptNotIssued, "no receipt"}},
		want: []wantCondition{{privacyv1alpha1.ConditionVerified, metav1.ConditionTrue, privacyv1alpha1.ReasonVerified},
			{privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonReceiptNotIssued}},
		wantEvent: privacyv1alpha1.ReasonReceiptNotIssued,
	}, {
		name: "failed request is never late", phase: privacyv1alpha1.PhaseFailed, deadline: past,
		stores: []privacyv1alpha1.DeletionStoreStatus{testbuilders.DeletionStore("a", privacyv1alpha1.StoreErasing)},
		want:   []wantCondition{{privacyv1alpha1.ConditionDeadlineExceeded, metav1.ConditionFalse, privacyv1alpha1.ReasonWithinDeadline}},
	}, {
		name: "unfinished request past its deadline", phase: privacyv1alpha1.PhaseErasing, deadline: past,
		stores: []privacyv1alpha1.DeletionStoreStatus{testbuilders.DeletionStore("a", privacyv1alpha1.StoreRetrying)},
		want: []wantCondition{{privacyv1alpha1.ConditionDeadlineExceeded, metav1.ConditionTrue, privacyv1alpha1.ReasonDeadlineExceeded},
			{privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreUnavailable},
			{privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreUnavailable}},
		wantEvent: privacyv1alpha1.ReasonDeadlineExceeded,
	}, {
		name: "a failed store outranks a retrying one", phase: privacyv1alpha1.PhaseErasing,
		stores: []privacyv1alpha1.DeletionStoreStatus{testbuilders.DeletionStore("a", privacyv1alpha1.StoreRetrying), testbuilders.DeletionStore("b", privacyv1alpha1.StoreFailed)},
		want:   []wantCondition{{privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreFailed}},
	}, {
		name: "records remain after erasure", phase: privacyv1alpha1.PhaseVerifying,
		stores: []privacyv1alpha1.DeletionStoreStatus{verified("a"), testbuilders.DeletionStore("b", privacyv1alpha1.StoreErased)},
		want: []wantCondition{{privacyv1alpha1.ConditionErased, metav1.ConditionTrue, privacyv1alpha1.ReasonErased},
			{privacyv1alpha1.ConditionVerified, metav1.ConditionFalse, privacyv1alpha1.ReasonDataRemains},
			{privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonDataRemains}},
		wantEvent: privacyv1alpha1.ReasonDataRemains,
	}, {
		name: "completed", phase: privacyv1alpha1.PhaseCompleted,
		stores: []privacyv1alpha1.DeletionStoreStatus{verified("a")},
		want: []wantCondition{{privacyv1alpha1.ConditionAccepted, metav1.ConditionTrue, privacyv1alpha1.ReasonAccepted},
			{privacyv1alpha1.ConditionVerified, metav1.ConditionTrue, privacyv1alpha1.ReasonVerified},
			{privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted}},
	}, {
		name: "reappeared", phase: privacyv1alpha1.PhaseReappeared,
		stores:   []privacyv1alpha1.DeletionStoreStatus{verified("a"), testbuilders.DeletionStore("b", privacyv1alpha1.StoreReappeared)},
		reverify: &reverificationOutcome{reappeared: []string{"DataStore b"}},
		want: []wantCondition{{privacyv1alpha1.ConditionErased, metav1.ConditionTrue, privacyv1alpha1.ReasonErased},
			{privacyv1alpha1.ConditionVerified, metav1.ConditionFalse, privacyv1alpha1.ReasonDataReappeared},
			{privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonDataReappeared}},
	}, {
		name: "re-erased", phase: privacyv1alpha1.PhaseCompleted,
		stores:   []privacyv1alpha1.DeletionStoreStatus{verified("a")},
		reverify: &reverificationOutcome{reappeared: []string{"DataStore a"}, reErased: []string{"DataStore a"}},
		want: []wantCondition{{privacyv1alpha1.ConditionVerified, metav1.ConditionTrue, privacyv1alpha1.ReasonReErased},
			{privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted}},
	}, {
		name: "identifiers Secret gone while erasing", phase: privacyv1alpha1.PhaseErasing,
		stores: []privacyv1alpha1.DeletionStoreStatus{testbuilders.DeletionStore("a", privacyv1alpha1.StoreErasing)},
		facts:  requestFacts{subjectProblem: &subject.Problem{Reason: privacyv1alpha1.ReasonIdentifiersMissing, Message: "gone"}},
		want: []wantCondition{{privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonIdentifiersMissing},
			{privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonIdentifiersMissing}},
		wantEvent: privacyv1alpha1.ReasonIdentifiersMissing,
	}, {
		name: "dry run completed", phase: privacyv1alpha1.PhaseCompleted, dryRun: true,
		stores: []privacyv1alpha1.DeletionStoreStatus{testbuilders.DeletionStore("a", privacyv1alpha1.StoreDryRun)},
		want: []wantCondition{{privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonDryRun},
			{privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonDryRun}},
		noCond: privacyv1alpha1.ConditionVerified,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dr := testbuilders.DeletionRequest("ns", "r", "jane", func(dr *privacyv1alpha1.DeletionRequest) { dr.Spec.DryRun = tc.dryRun })
			dr.Status.Phase, dr.Status.Stores, dr.Status.Deadline = tc.phase, tc.stores, tc.deadline
			dr.Status.Verification = &privacyv1alpha1.VerificationStatus{Verifications: 2}
			e := &effects{now: logicNow}
			deriveDeletionStatus(dr, &tc.facts, tc.reverify, e)
			checkConditions(t, dr.Status.Conditions, tc.want)
			if tc.noCond != "" && meta.FindStatusCondition(dr.Status.Conditions, tc.noCond) != nil {
				t.Errorf("%s set", tc.noCond)
			}
			if tc.wantEvent != "" && !hasEvent(e, corev1.EventTypeWarning, tc.wantEvent) {
				t.Errorf("no %s Warning event: %+v", tc.wantEvent, e.events)
			}
			// Deriving again from the same state changes nothing and repeats no event.
			before := dr.DeepCopy()
			again := &effects{now: logicNow}
			deriveDeletionStatus(dr, &tc.facts, tc.reverify, again)
			for _, c := range before.Status.Conditions {
				if now := meta.FindStatusCondition(dr.Status.Conditions, c.Type); now.Reason != c.Reason || now.Status != c.Status {
					t.Errorf("%s changed on a second derivation: %+v", c.Type, now)
				}
			}
			for _, ev := range again.events {
				if ev.reason != privacyv1alpha1.ReasonReceiptNotIssued && ev.reason != privacyv1alpha1.ReasonIdentifiersMissing {
					t.Errorf("event repeated: %+v", ev)
				}
			}
		})
	}
}

func TestAccessStatusDerivation(t *testing.T) {
	past := ptrTime(logicNow.Add(-time.Hour))
	export := &privacyv1alpha1.ExportReference{SecretName: "r-export", ExpiresAt: ptrTime(logicNow.Add(time.Hour))}
	cases := []struct {
		name     string
		phase    privacyv1alpha1.RequestPhase
		stores   []privacyv1alpha1.AccessStoreStatus
		export   *privacyv1alpha1.ExportReference
		deadline *metav1.Time
		facts    requestFacts
		want     []wantCondition
	}{{
		name: "delivered", phase: privacyv1alpha1.PhaseCompleted, export: export,
		stores: []privacyv1alpha1.AccessStoreStatus{testbuilders.AccessStore("a", privacyv1alpha1.StoreCollected, 3)},
		want: []wantCondition{{privacyv1alpha1.ConditionCollected, metav1.ConditionTrue, privacyv1alpha1.ReasonCollected},
			{privacyv1alpha1.ConditionExpired, metav1.ConditionFalse, privacyv1alpha1.ReasonNotExpired},
			{privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered}},
	}, {
		name: "a store retrying", phase: privacyv1alpha1.PhaseCollecting,
		stores: []privacyv1alpha1.AccessStoreStatus{testbuilders.AccessStore("a", privacyv1alpha1.StoreCollected, 3), testbuilders.AccessStore("b", privacyv1alpha1.StoreRetrying, 0)},
		want: []wantCondition{{privacyv1alpha1.ConditionCollected, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreUnavailable},
			{privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreUnavailable}},
	}, {
		name: "export not delivered stays on Ready", phase: privacyv1alpha1.PhaseCollecting,
		stores: []privacyv1alpha1.AccessStoreStatus{testbuilders.AccessStore("a", privacyv1alpha1.StoreCollected, 3)},
		facts:  requestFacts{blocked: &blockingFailure{privacyv1alpha1.ReasonExportNotDelivered, "no export"}},
		want: []wantCondition{{privacyv1alpha1.ConditionCollected, metav1.ConditionTrue, privacyv1alpha1.ReasonCollected},
			{privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonExportNotDelivered}},
	}, {
		name: "failed request is never late", phase: privacyv1alpha1.PhaseFailed, deadline: past,
		facts: requestFacts{blocked: &blockingFailure{privacyv1alpha1.ReasonExportTooLarge, "too large"}},
		want: []wantCondition{{privacyv1alpha1.ConditionDeadlineExceeded, metav1.ConditionFalse, privacyv1alpha1.ReasonWithinDeadline},
			{privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonExportTooLarge}},
	}, {
		name: "expired", phase: privacyv1alpha1.PhaseExpired, export: export,
		stores: []privacyv1alpha1.AccessStoreStatus{testbuilders.AccessStore("a", privacyv1alpha1.StoreCollected, 3)},
		want: []wantCondition{{privacyv1alpha1.ConditionExpired, metav1.ConditionTrue, privacyv1alpha1.ReasonExpired},
			{privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonExpired}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ar := testbuilders.AccessRequest("ns", "r", "jane")
			ar.Status.Phase, ar.Status.Stores, ar.Status.Export, ar.Status.Deadline = tc.phase, tc.stores, tc.export, tc.deadline
			deriveAccessStatus(ar, &tc.facts, &effects{now: logicNow})
			checkConditions(t, ar.Status.Conditions, tc.want)
		})
	}
}
