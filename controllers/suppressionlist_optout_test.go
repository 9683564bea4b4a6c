package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
)

// A DROP list with action optOut, for a broker that records only an opt-out: the item in the
// store is reported opted out (4) and its rows stay, the one nowhere is not found (5), the one
// only in a retained table is exempted (2); what was found is counted as matched, nothing is
// erased, and DataReappeared stays False.
func TestSuppressionListOptOutReportsFourAndKeepsTheRows(t *testing.T) {
	f := startPostgresFixture(t)
	f.exec(t, `INSERT INTO invoices (id, customer_email, amount) VALUES (300, 'carol@example.com', 9)`)
	startOperator(t, func(o *operator.Options) { o.EnableSuppressionLists = true })
	ns := newNamespace(t, nil)
	f.dataStore(t, ns, "pg")
	customersBefore := f.count(t, `SELECT COUNT(*) FROM customers`)
	ordersBefore := f.count(t, `SELECT COUNT(*) FROM orders WHERE address IS NOT NULL`)
	create(t, dropSecret(ns, "drop-download", map[string]string{"email.csv": "ID,Hash\n" +
		"A-1," + dropHash(subjectIDs["email"]) + "\n" +
		"B-2," + dropHash("nobody@example.com") + "\n" +
		"C-3," + dropHash("carol@example.com") + "\n"}))
	list := suppressionList(ns, "drop", privacyv1alpha1.SuppressionSource{DropSecretRef: &privacyv1alpha1.LocalObjectReference{Name: "drop-download"}})
	list.Spec.Action = privacyv1alpha1.SuppressionOptOut
	create(t, list)

	want := map[string]string{"A-1": "4", "B-2": "5", "C-3": "2"}
	var report map[string]string
	l := waitSupl(t, ns, "drop", 40*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		report = reportOf(t, l)
		return l.Status.Entries == 3 && sameReport(report, want)
	})
	t.Logf("%s; report %s", describeSupl(l), describeReport(report))
	if !hasReason(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared, metav1.ConditionFalse, privacyv1alpha1.ReasonNoneFound) ||
		!isTrue(l.Status.Conditions, privacyv1alpha1.ConditionReady) {
		t.Errorf("conditions: %s", conditionsString(l.Status.Conditions))
	}
	// Matches are distinct values per column: Jane's email in customers and orders (kept), in
	// invoices (retained), and Carol's in invoices (retained).
	if st := suplStore(t, l, "pg"); st.Matched != 4 || st.Retained != 2 || st.Erased != 0 || !st.Supported {
		t.Errorf("store status: %s", describeSupl(l))
	}
	if n := f.count(t, `SELECT COUNT(*) FROM customers`); n != customersBefore {
		t.Errorf("customers: %d, want %d: an optOut list erased a row", n, customersBefore)
	}
	if n := f.count(t, `SELECT COUNT(*) FROM customers WHERE email = 'jane.doe@example.com'`); n != 1 {
		t.Errorf("Jane's customer row: %d, want 1", n)
	}
	if n := f.count(t, `SELECT COUNT(*) FROM orders WHERE address IS NOT NULL`); n != ordersBefore {
		t.Errorf("unmasked orders: %d, want %d: an optOut list masked a row", n, ordersBefore)
	}

	// The next sweep finds the same rows again: still 4, still not reappeared.
	sweeps := l.Status.Sweeps
	l = waitSupl(t, ns, "drop", 40*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		return l.Status.Sweeps > sweeps
	})
	if report = reportOf(t, l); !sameReport(report, want) || isTrue(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared) {
		t.Errorf("the next sweep: %s; report %s", describeSupl(l), describeReport(report))
	}
	evs, err := eventsAbout(ns, "drop")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Reason == privacyv1alpha1.ReasonDataReappeared {
			t.Errorf("an optOut list raised a %s event: %s", e.Reason, e.Message)
		}
	}
}

// optOut is a DROP status: a list fed by DeletionRequests cannot ask for it.
func TestSuppressionListOptOutNeedsADropSource(t *testing.T) {
	ns := newNamespace(t, nil)
	list := suppressionList(ns, "keyed", privacyv1alpha1.SuppressionSource{DeletionRequests: &privacyv1alpha1.DeletionRequestsSource{}})
	list.Spec.Action = privacyv1alpha1.SuppressionOptOut
	err := env.Client.Create(context.Background(), list)
	if err == nil || !strings.Contains(err.Error(), "action optOut needs a dropSecretRef source") {
		t.Fatalf("creating an optOut list fed by DeletionRequests: %v", err)
	}
}
