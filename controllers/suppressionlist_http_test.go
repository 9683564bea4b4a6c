package controllers_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// An http store whose service offers sweeps is swept for a DROP list with salted digests: the
// person on the list is found and erased through the ordinary erase call, the absent item is
// reported as not found, and the bystander's record stays.
func TestSuppressionListSweepsAnHTTPStoreByDigests(t *testing.T) {
	startOperator(t, withSuppressionLists)
	ns := newNamespace(t, nil)
	svc, gate, url := startRefService(t, "tok")
	gate.Open()
	httpDataStore(t, ns, "crm", url, "tok")
	create(t, dropSecret(ns, "drop-download", map[string]string{
		"email.csv": "A-1," + dropHash(" "+strings.ToUpper(subjectIDs["email"])) + "\nA-2," + dropHash("nobody@example.net") + "\n"}))
	create(t, dropList(ns, "drop", "drop-download", time.Minute))

	l := waitSupl(t, ns, "drop", settle, func(l *privacyv1alpha1.SuppressionList) bool {
		r := reportOf(t, l)
		return r["A-1"] == "3" && r["A-2"] == "5"
	})
	if st := suplStore(t, l, "crm"); !st.Supported || st.Erased != 1 {
		t.Errorf("http store after the sweep: %s", describeSupl(l))
	}
	loc, ok := svc.Location("crm.contacts")
	if !ok {
		t.Fatal("the service lost its location")
	}
	var left []string
	for _, rec := range loc.Records {
		left = append(left, rec.Key)
	}
	if len(left) != 1 || left[0] != bystanderIDs["userId"] {
		t.Errorf("records left in the http store: %v, want only the bystander's", left)
	}
}

// A list fed by DeletionRequests holds keyed hashes, which a digest-sending store cannot be
// matched against: the store is shown as not swept, and the list is not failing because of it.
func TestSuppressionListShowsAKeyedListCannotSweepAnHTTPStore(t *testing.T) {
	startOperator(t, withSuppressionLists)
	ns := newNamespace(t, nil)
	_, _, url := startRefService(t, "tok")
	httpDataStore(t, ns, "crm", url, "tok")
	list := suppressionList(ns, "keyed", privacyv1alpha1.SuppressionSource{DeletionRequests: &privacyv1alpha1.DeletionRequestsSource{}})
	list.Spec.SweepInterval = &metav1.Duration{Duration: time.Minute}
	create(t, list)
	l := waitSupl(t, ns, "keyed", settle, func(l *privacyv1alpha1.SuppressionList) bool {
		return l.Status.Sweeps >= 1 && len(l.Status.Stores) == 1
	})
	st := suplStore(t, l, "crm")
	if st.Supported || !strings.Contains(st.Message, "DROP") {
		t.Errorf("the http store's status does not say it cannot be swept for a keyed list: %s", describeSupl(l))
	}
	if !isTrue(l.Status.Conditions, privacyv1alpha1.ConditionReady) {
		t.Errorf("a store that cannot be swept made the list fail: %s", describeSupl(l))
	}
}
