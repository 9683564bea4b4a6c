package controllers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// TestUnlabelledSecretsAreNeitherSentNorDeleted: a DataStore naming a Secret that did not opt in as
// a connection Secret sends nothing to its server, and a request naming a Secret that is not
// marked as identifiers is refused and the Secret survives its request's whole life.
func TestUnlabelledSecretsAreNeitherSentNorDeleted(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	ctx := context.Background()

	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	// An application's Secret: no privacy.dsr.dev/secret-type label.
	appSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-token"}, StringData: map[string]string{"token": "app-s3cret"}}
	create(t, appSecret)
	ds := &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "borrower"},
		Spec: privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeHTTP, Connection: privacyv1alpha1.Connection{
			URL: srv.URL, SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "app-token", Key: "token"}}}}
	create(t, ds)
	waitStoreReady(t, ds, func() []metav1.Condition { return ds.Status.Conditions }, metav1.ConditionFalse, privacyv1alpha1.ReasonSecretNotOptedIn)
	if c := condition(ds.Status.Conditions, privacyv1alpha1.ConditionReady); !strings.Contains(c, "kubectl label secret app-token") || strings.Contains(c, "app-s3cret") {
		t.Errorf("Ready: %s", c)
	}

	// A request naming the application's Secret as identifiers, with no re-verification period.
	startSQLiteFixture(t).dataStore(t, ns, "db")
	create(t, deletionRequest(ns, "grab", "app-token", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{ReverifyPeriod: &metav1.Duration{}}
	}))
	waitDR(t, ns, "grab", privacyv1alpha1.ConditionAccepted, metav1.ConditionFalse, privacyv1alpha1.ReasonSecretNotOptedIn, settle)
	time.Sleep(2 * time.Second)
	if err := env.Client.Get(ctx, keyOf(ns, "app-token"), &corev1.Secret{}); err != nil {
		t.Errorf("the application's Secret was touched: %v", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the server got %d requests with a Secret that did not opt in", n)
	}
}
