package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/testbuilders"
)

// A request may be named with 253 characters: its receipt and its export get names and labels
// within the limits, and the request completes.
func TestLongestRequestNamesComplete(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	f := startSQLiteFixture(t)
	f.dataStore(t, ns, "db")
	name := testbuilders.LongName(253)
	create(t, testbuilders.IdentifiersSecret(ns, "jane", subjectIDs))
	create(t, testbuilders.DeletionRequest(ns, name, "jane"))
	dr := waitDR(t, ns, name, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	verifyReceipt(t, dr)
	if n := dr.Status.Receipt.ConfigMapName; len(n) > validation.DNS1123SubdomainMaxLength {
		t.Errorf("receipt ConfigMap name of %d characters", len(n))
	}
	f.assertErased(t)

	create(t, testbuilders.IdentifiersSecret(ns, "john", subjectIDs))
	create(t, testbuilders.AccessRequest(ns, name, "john"))
	ar := waitAR(t, ns, name, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, settle)
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: ar.Status.Export.SecretName}, &s); err != nil {
		t.Fatal(err)
	}
	if s.Labels[requests.LabelRequestUID] != string(ar.UID) {
		t.Errorf("export Secret labels %v", s.Labels)
	}
}

// A receipt that cannot be written keeps the request from completing, and says so on Ready and in a
// Warning event, instead of "in progress".
func TestReceiptFailureStaysVisible(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	f := startSQLiteFixture(t)
	f.dataStore(t, ns, "db")
	create(t, testbuilders.IdentifiersSecret(ns, "jane", subjectIDs))
	// Someone else's ConfigMap holds the receipt's name.
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "blocked-receipt"}})
	create(t, testbuilders.DeletionRequest(ns, "blocked", "jane"))
	dr := waitDR(t, ns, "blocked", privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonReceiptNotIssued, settle)
	if dr.Status.Phase == privacyv1alpha1.PhaseCompleted || dr.Status.Receipt != nil {
		t.Errorf("completed without a receipt: phase %s", dr.Status.Phase)
	}
	waitEvent(t, ns, "blocked", privacyv1alpha1.ReasonReceiptNotIssued, "receipt")
}
