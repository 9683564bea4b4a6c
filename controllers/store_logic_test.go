package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

func TestNextCheck(t *testing.T) {
	checked := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	status := func(gen int64, ready metav1.ConditionStatus, last *time.Time) *privacyv1alpha1.DataStoreStatus {
		s := &privacyv1alpha1.DataStoreStatus{ObservedGeneration: gen}
		if last != nil {
			s.LastCheckTime = &metav1.Time{Time: *last}
		}
		if ready != "" {
			s.Conditions = []metav1.Condition{{Type: privacyv1alpha1.ConditionReady, Status: ready, ObservedGeneration: gen}}
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		status *privacyv1alpha1.DataStoreStatus
		want   time.Time
	}{
		{"never checked", status(0, "", nil), time.Time{}},
		{"spec changed since", status(1, metav1.ConditionTrue, &checked), time.Time{}},
		{"ready: after the interval", status(2, metav1.ConditionTrue, &checked), checked.Add(10 * time.Minute)},
		{"not ready: at most failedCheckRetry", status(2, metav1.ConditionFalse, &checked), checked.Add(failedCheckRetry)},
		{"no Ready condition", status(2, "", &checked), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextCheck(tc.status, 2, 10*time.Minute); !got.Equal(tc.want) {
				t.Errorf("nextCheck = %v, want %v", got, tc.want)
			}
		})
	}
}

// A receipt ConfigMap without the issuedAt annotation (written before it existed) is dated by
// its receipt, and while it holds only the plan, by its creation.
func TestReceiptIssuedAtFromData(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	issued := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		data map[string]string
		want time.Time
	}{
		{"receipt", map[string]string{receipt.DataKey: `{"version":"v","issuedAt":"2026-01-03T00:00:00Z","stores":[]}`, receipt.PlanKey: `{}`}, issued},
		{"plan only: from creation", map[string]string{receipt.PlanKey: `{}`}, created.Time},
		{"receipt that does not parse: from creation", map[string]string{receipt.DataKey: `{`}, created.Time},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: created}, Data: tc.data}
			if got := receiptIssuedAt(cm); !got.Equal(tc.want) {
				t.Errorf("issued at %v, want %v", got, tc.want)
			}
		})
	}
}
