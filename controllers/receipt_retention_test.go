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

	"github.com/dsr-operator/dsr-operator/controllers"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

// receiptConfigMap is a receipt ConfigMap as the DeletionRequest controller leaves it: labelled
// with its request's UID, owned by nothing, the receipt issued at issuedAt and annotated so.
func receiptConfigMap(t *testing.T, ns, name string, requestUID types.UID, issuedAt time.Time) *corev1.ConfigMap {
	t.Helper()
	cm := unannotatedReceipt(t, ns, name, requestUID, issuedAt, false)
	cm.Annotations = map[string]string{"privacy.dsr.dev/receipt-issued-at": issuedAt.UTC().Format(time.RFC3339)}
	create(t, cm)
	return cm
}

// unannotatedReceipt is a receipt ConfigMap as an operator before the issuedAt annotation left
// it (created in the API server when store is true).
func unannotatedReceipt(t *testing.T, ns, name string, requestUID types.UID, issuedAt time.Time, store bool) *corev1.ConfigMap {
	t.Helper()
	raw, err := json.Marshal(receipt.Receipt{Version: receipt.Version, IssuedAt: issuedAt.UTC().Truncate(time.Second),
		Request: receipt.RequestRef{Kind: "DeletionRequest", Namespace: ns, Name: name, UID: string(requestUID)}})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: receipt.ConfigMapName(name),
		Labels: map[string]string{"app.kubernetes.io/managed-by": "dsr-operator", "privacy.dsr.dev/request-uid": string(requestUID)}},
		Data: map[string]string{receipt.DataKey: string(raw), receipt.SignatureKey: "c2lnbmF0dXJl"}}
	if store {
		create(t, cm)
	}
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
	startOperator(t, func(o *operator.Options) { o.ReceiptRecordsPeriod, o.ReceiptSweepInterval = period, time.Second })
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

// A receipt written before the issuedAt annotation is dated by its receipt, read whole once its
// ConfigMap is older than the records period; the sweep lists metadata only otherwise.
func TestReceiptSweepDatesUnannotatedReceiptsByTheirReceipt(t *testing.T) {
	const period = time.Hour
	ns := newNamespace(t, nil)
	now := time.Now()
	// Issued half an hour after its ConfigMap was made (a slow verification): due half an hour
	// after the ConfigMap's own period.
	late := unannotatedReceipt(t, ns, "late", "uid-late", now.Add(30*time.Minute), true)
	// Holding only its plan: dated by its creation.
	planOnly := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: receipt.ConfigMapName("plan-only"),
		Labels: map[string]string{"app.kubernetes.io/managed-by": "dsr-operator", "privacy.dsr.dev/request-uid": "uid-plan-only"}},
		Data: map[string]string{receipt.PlanKey: "{}"}}
	create(t, planOnly)
	annotatedLate := receiptConfigMap(t, ns, "annotated-late", "uid-annotated-late", now.Add(30*time.Minute))

	sweep := func(at time.Time) int {
		t.Helper()
		// Only this test's namespace: a sweep on a moved clock leaves other tests' receipts alone.
		r := &controllers.ReceiptRetention{Client: env.Client, Reader: env.Client, Namespaces: []string{ns}, RecordsPeriod: period,
			Now: func() time.Time { return at }}
		removed, err := r.Sweep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return removed
	}
	if n := sweep(now.Add(period / 2)); n != 0 {
		t.Fatalf("within the period: %d receipts removed", n)
	}
	if n := sweep(now.Add(period + 10*time.Minute)); n != 1 || configMapExists(t, planOnly) {
		t.Fatalf("past the ConfigMaps' period: %d removed, plan-only exists %v; want only the plan-only one removed", n, configMapExists(t, planOnly))
	}
	if !configMapExists(t, late) || !configMapExists(t, annotatedLate) {
		t.Fatal("a receipt issued after its ConfigMap was made was removed by its creation time")
	}
	if n := sweep(now.Add(period + 40*time.Minute)); n != 2 || configMapExists(t, late) || configMapExists(t, annotatedLate) {
		t.Fatalf("past the receipts' period: %d removed; want both", n)
	}
}
