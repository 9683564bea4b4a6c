package controllers

import (
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

// The informer may pass an object it already transformed through the transform again (it does
// on a relist); the issue time must survive, or the receipt would look issued when it was created.
func TestReceiptIssueTimeOnlyIsIdempotent(t *testing.T) {
	issuedAt := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	raw, err := json.Marshal(receipt.Receipt{Version: receipt.Version, IssuedAt: issuedAt})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r-receipt",
		CreationTimestamp: metav1.NewTime(issuedAt.Add(time.Hour))},
		Data: map[string]string{receipt.DataKey: string(raw)}}

	once, err := receiptIssueTimeOnly(cm)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := receiptIssueTimeOnly(once)
	if err != nil {
		t.Fatal(err)
	}
	for name, obj := range map[string]any{"once": once, "twice": twice} {
		got := obj.(*corev1.ConfigMap)
		if len(got.Data) != 0 {
			t.Errorf("%s: the cached ConfigMap keeps data %v", name, got.Data)
		}
		if at := receiptIssuedAt(got); !at.Equal(issuedAt) {
			t.Errorf("%s: issued at %v, want %v", name, at, issuedAt)
		}
	}
}
