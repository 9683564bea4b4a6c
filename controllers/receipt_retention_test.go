package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

// receiptConfigMap is a receipt ConfigMap as the DeletionRequest controller leaves it: labelled
// with its request's UID, owned by nothing, the receipt issued at issuedAt.
func receiptConfigMap(t *testing.T, ns, name string, requestUID types.UID, issuedAt time.Time) *corev1.ConfigMap {
	t.Helper()
	raw, err := json.Marshal(receipt.Receipt{Version: receipt.Version, IssuedAt: issuedAt.UTC().Truncate(time.Second),
		Request: receipt.RequestRef{Kind: "DeletionRequest", Namespace: ns, Name: name, UID: string(requestUID)}})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: receipt.ConfigMapName(name),
		Labels: map[string]string{"app.kubernetes.io/managed-by": "dsr-operator", "privacy.dsr.dev/request-uid": string(requestUID)}},
		Data: map[string]string{receipt.DataKey: string(raw), receipt.SignatureKey: "c2lnbmF0dXJl"}}
	create(t, cm)
	return cm
}

func configMapExists(t *testing.T, cm *corev1.ConfigMap) bool {
	t.Helper()
	err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(cm), &corev1.ConfigMap{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestReceiptRetention(t *testing.T) {
	const period = time.Hour
	startOperator(t, func(o *operator.Options) { o.ReceiptRecordsPeriod = period })
	ns := newNamespace(t, nil)
	now := time.Now()

	old := receiptConfigMap(t, ns, "old", "uid-old", now.Add(-2*period))
	young := receiptConfigMap(t, ns, "young", "uid-young", now.Add(-period/2))
	// Expires a few seconds into the test: it is looked at again when it does.
	expiring := receiptConfigMap(t, ns, "expiring", "uid-expiring", now.Add(-period+5*time.Second))

	// The receipt of a request that was then deleted stays for its records period.
	dr := deletionRequest(ns, "gone", "no-such-secret")
	create(t, dr)
	orphan := receiptConfigMap(t, ns, "gone", dr.UID, now.Add(-period/2))
	if err := env.Client.Delete(context.Background(), dr); err != nil {
		t.Fatal(err)
	}

	// A ConfigMap that is not a receipt (no request label) is never touched, however old.
	stranger := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stranger",
		Labels: map[string]string{"app.kubernetes.io/managed-by": "dsr-operator"}},
		Data: map[string]string{receipt.DataKey: fmt.Sprintf(`{"issuedAt":%q}`, now.Add(-100*period).UTC().Format(time.RFC3339))}}
	create(t, stranger)

	eventually(t, settle, func() (bool, string) {
		return !configMapExists(t, old) && !configMapExists(t, expiring),
			fmt.Sprintf("receipts past their records period: old exists %v, expiring exists %v", configMapExists(t, old), configMapExists(t, expiring))
	})
	// Long enough for the reconciles of the younger ones to have run too.
	time.Sleep(2 * time.Second)
	for _, cm := range []*corev1.ConfigMap{young, orphan, stranger} {
		if !configMapExists(t, cm) {
			t.Errorf("ConfigMap %s was deleted within its records period", cm.Name)
		}
	}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(dr), dr); !apierrors.IsNotFound(err) {
		t.Errorf("the DeletionRequest still exists (%v): the orphan case proves nothing", err)
	}
}
