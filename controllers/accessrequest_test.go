package controllers_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/export"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

func accessRequest(ns, name, secretName string, mutate ...func(*privacyv1alpha1.AccessRequest)) *privacyv1alpha1.AccessRequest {
	ar := &privacyv1alpha1.AccessRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{
			Subject:    privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: secretName}},
			Regulation: privacyv1alpha1.RegulationGDPR,
		}},
	}
	for _, m := range mutate {
		m(ar)
	}
	return ar
}

func waitAR(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string, timeout time.Duration) *privacyv1alpha1.AccessRequest {
	t.Helper()
	var ar *privacyv1alpha1.AccessRequest
	eventually(t, timeout, func() (bool, string) {
		ar = getAR(t, ns, name)
		var stores []string
		for _, s := range ar.Status.Stores {
			stores = append(stores, fmt.Sprintf("%s[%s %d att=%d %q]", s.Name, s.Phase, s.Records, s.Attempts, s.Message))
		}
		return hasReason(ar.Status.Conditions, typ, status, reason),
			fmt.Sprintf("%s want %s/%s; phase %s; %s; stores %s", typ, status, reason, ar.Status.Phase, conditionsString(ar.Status.Conditions), strings.Join(stores, " "))
	})
	return ar
}

// readExport fetches the export Secret and checks its digest against the status.
func readExport(t *testing.T, ar *privacyv1alpha1.AccessRequest) (*export.Document, string) {
	t.Helper()
	ref := ar.Status.Export
	if ref == nil {
		t.Fatal("no status.export")
	}
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), keyOf(ar.Namespace, ref.SecretName), &s); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(&s, ar) {
		t.Error("the export Secret is not owned by the request")
	}
	stored := s.Data[ref.Key]
	if receipt.Digest(stored) != ref.SHA256 || int64(len(stored)) != ref.Bytes {
		t.Errorf("status.export does not describe the stored bytes: %+v", ref)
	}
	raw := stored
	if ref.Encoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(stored))
		if err != nil {
			t.Fatal(err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	var doc export.Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return &doc, string(raw)
}

func TestAccessExportOverEveryStoreType(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	fixtures := map[string]*sqlFixture{"pg": startPostgresFixture(t), "maria": startMariaDBFixture(t), "sqlite": startSQLiteFixture(t)}
	for name, f := range fixtures {
		f.dataStore(t, ns, name)
	}
	_, _, url := startRefService(t, "tok")
	httpDataStore(t, ns, "crm", url, "tok")
	rd := redisDataStore(t, ns, "cache")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, accessRequest(ns, "export-jane", "jane"))

	ar := waitAR(t, ns, "export-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, settle)
	if !isTrue(ar.Status.Conditions, privacyv1alpha1.ConditionCollected) || ar.Status.Phase != privacyv1alpha1.PhaseCompleted {
		t.Errorf("%s", conditionsString(ar.Status.Conditions))
	}
	doc, raw := readExport(t, ar)
	if !doc.Complete || doc.Request.UID != string(ar.UID) || doc.SubjectDigest != ar.Status.SubjectDigest || doc.Regulation != "GDPR" || doc.Format != export.Format {
		t.Errorf("export header %+v", doc)
	}
	if len(doc.Stores) != 5 {
		t.Fatalf("stores in export: %d", len(doc.Stores))
	}
	for _, s := range doc.Stores {
		switch s.Type {
		case "postgres", "mysql", "sqlite":
			// One customer, two orders, one invoice.
			if s.RecordCount != 4 || len(s.Locations) != 3 || len(s.Purposes) != 1 || s.Description == "" || s.Retention == "" || len(s.Recipients) != 1 || len(s.DataCategories) != 2 {
				t.Errorf("%s: %+v", s.Name, s)
			}
		case "http":
			if s.RecordCount != 1 || s.Description != "CRM processor" {
				t.Errorf("%s: %+v", s.Name, s)
			}
		case "redis":
			if s.RecordCount != rd.subjectKeys {
				t.Errorf("%s: %d records, want %d", s.Name, s.RecordCount, rd.subjectKeys)
			}
		}
	}
	if !strings.Contains(raw, subjectIDs["email"]) {
		t.Error("the subject's own data is missing from the export")
	}
	if strings.Contains(raw, `"`+bystanderIDs["email"]+`"`) || strings.Contains(raw, bystanderIDs["userId"]) {
		t.Error("a bystander's data is in the export")
	}
	for _, s := range ar.Status.Stores {
		if s.Phase != privacyv1alpha1.StoreCollected || s.CollectedAt == nil {
			t.Errorf("store status %+v", s)
		}
	}
	assertNoIdentifiersIn(t, ns, ar)
}

func TestAccessExportOfNobodyIsExplicit(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	startSQLiteFixture(t).dataStore(t, ns, "db")
	create(t, secret(ns, "nobody", map[string]string{"email": "nobody@example.net"}))
	create(t, accessRequest(ns, "nobody", "nobody"))
	ar := waitAR(t, ns, "nobody", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, settle)
	doc, _ := readExport(t, ar)
	if doc.RecordCount != 0 || !doc.Complete || !strings.Contains(doc.Summary, "No records") || len(doc.Stores) != 1 || doc.Stores[0].Locations == nil {
		t.Errorf("%+v", doc)
	}
}

func TestAccessExportExpires(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	startSQLiteFixture(t).dataStore(t, ns, "db")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, accessRequest(ns, "short", "jane", func(ar *privacyv1alpha1.AccessRequest) { ar.Spec.TTL = &metav1.Duration{Duration: 2 * time.Second} }))
	ar := waitAR(t, ns, "short", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, settle)
	name := ar.Status.Export.SecretName
	ar = waitAR(t, ns, "short", privacyv1alpha1.ConditionExpired, metav1.ConditionTrue, privacyv1alpha1.ReasonExpired, 20*time.Second)
	if ar.Status.Phase != privacyv1alpha1.PhaseExpired || isTrue(ar.Status.Conditions, privacyv1alpha1.ConditionReady) {
		t.Errorf("phase %s, %s", ar.Status.Phase, conditionsString(ar.Status.Conditions))
	}
	if err := env.Client.Get(context.Background(), keyOf(ns, name), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("export Secret still there: %v", err)
	}
	// The identifiers go with the export: nothing needs them any more.
	if err := env.Client.Get(context.Background(), keyOf(ns, "jane"), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("identifiers Secret still there after the export expired: %v", err)
	}
}

func TestAccessStoreDownAtFirst(t *testing.T) {
	ctx := context.Background()
	pg, _, ns := storeDownAtFirst(t)
	create(t, secret(ns, "jane", subjectIDs))
	create(t, accessRequest(ns, "later", "jane"))
	ar := waitAR(t, ns, "later", privacyv1alpha1.ConditionCollected, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreUnavailable, settle)
	if ar.Status.Export != nil {
		t.Fatal("an export was delivered without the store")
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ar = waitAR(t, ns, "later", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, 2*time.Minute)
	doc, _ := readExport(t, ar)
	if doc.RecordCount != 4 {
		t.Errorf("records %d", doc.RecordCount)
	}
}

func TestAccessExportTooLarge(t *testing.T) {
	startOperator(t, func(o *operator.Options) { o.MaxExportBytes = 512 })
	ns := newNamespace(t, nil)
	f := startSQLiteFixture(t)
	f.dataStore(t, ns, "db")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, accessRequest(ns, "big", "jane"))
	ar := waitAR(t, ns, "big", privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonExportTooLarge, settle)
	c := condition(ar.Status.Conditions, privacyv1alpha1.ConditionReady)
	if !strings.Contains(c, "at most 512 bytes") || ar.Status.Export != nil || ar.Status.Phase != privacyv1alpha1.PhaseFailed {
		t.Errorf("%s; export %+v", c, ar.Status.Export)
	}
	if err := env.Client.Get(context.Background(), keyOf(ns, "big-export"), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("a partial export was delivered: %v", err)
	}
}
