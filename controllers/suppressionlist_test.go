package controllers_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
)

func suppressionList(ns, name string, source privacyv1alpha1.SuppressionSource) *privacyv1alpha1.SuppressionList {
	return &privacyv1alpha1.SuppressionList{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: privacyv1alpha1.SuppressionListSpec{
			Source:        source,
			SweepInterval: &metav1.Duration{Duration: 10 * time.Second},
			Action:        privacyv1alpha1.SuppressionErase,
		},
	}
}

func getSupl(t *testing.T, ns, name string) *privacyv1alpha1.SuppressionList {
	t.Helper()
	var l privacyv1alpha1.SuppressionList
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

// waitSupl waits until cond holds of the list.
func waitSupl(t *testing.T, ns, name string, timeout time.Duration, cond func(*privacyv1alpha1.SuppressionList) bool) *privacyv1alpha1.SuppressionList {
	t.Helper()
	var l *privacyv1alpha1.SuppressionList
	eventually(t, timeout, func() (bool, string) {
		l = getSupl(t, ns, name)
		return cond(l), describeSupl(l)
	})
	return l
}

func describeSupl(l *privacyv1alpha1.SuppressionList) string {
	var stores []string
	for _, s := range l.Status.Stores {
		stores = append(stores, fmt.Sprintf("%s/%s[scanned=%d matched=%d erased=%d retained=%d supported=%t %q]",
			s.Kind, s.Name, s.Scanned, s.Matched, s.Erased, s.Retained, s.Supported, s.Message))
	}
	return fmt.Sprintf("entries=%d sweeps=%d report=%q conditions: %s; stores: %s", l.Status.Entries, l.Status.Sweeps,
		l.Status.ReportSecretName, conditionsString(l.Status.Conditions), strings.Join(stores, " "))
}

func suplStore(t *testing.T, l *privacyv1alpha1.SuppressionList, name string) privacyv1alpha1.SuppressionStoreStatus {
	t.Helper()
	for _, s := range l.Status.Stores {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("store %s not in the list's status: %s", name, describeSupl(l))
	return privacyv1alpha1.SuppressionStoreStatus{}
}

// A request ends, its Secret goes, the person is on the list as keyed hashes; when they come
// back spelled differently, the next sweep erases them again, says so, leaves the bystander
// alone, and nothing of the namespace, nor any line the manager logged, holds their identifiers
// in clear.
func TestSuppressionListKeepsAnErasedPersonErased(t *testing.T) {
	f := startPostgresFixture(t)
	var logs *logBuffer
	op := startOperator(t, func(o *operator.Options) {
		o.EnableSuppressionLists = true
		logs = captureLogs(o)
	})
	ns := newNamespace(t, nil)
	f.dataStore(t, ns, "pg")
	create(t, suppressionList(ns, "erased", privacyv1alpha1.SuppressionSource{DeletionRequests: &privacyv1alpha1.DeletionRequestsSource{}}))
	create(t, secret(ns, "jane", subjectIDs))
	// The grep below can fail: it finds the email while the identifiers Secret holds it.
	if !namespaceHolds(t, ns, "pg-conn", subjectIDs["email"]) {
		t.Fatal("the namespace grep does not see the identifiers Secret")
	}
	create(t, deletionRequest(ns, "forget", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{ReverifyInterval: &metav1.Duration{Duration: time.Second},
			ReverifyPeriod: &metav1.Duration{Duration: 3 * time.Second}}
	}))
	eventually(t, settle, func() (bool, string) {
		dr := getDR(t, ns, "forget")
		return dr.Status.Verification != nil && dr.Status.Verification.IdentifiersSecretDeleted,
			conditionsString(dr.Status.Conditions) + "; " + storesString(dr)
	})
	f.assertErased(t)
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "jane"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the identifiers Secret is still there: %v", err)
	}
	// A sweep with the person on the list, before anything came back: the masked orders and the
	// retained invoice that carry the email are what the request left on purpose, not data that
	// reappeared.
	l := waitSupl(t, ns, "erased", 40*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		return l.Status.Entries > 0 && hasReason(l.Status.Conditions, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonSwept) &&
			strings.Contains(condition(l.Status.Conditions, privacyv1alpha1.ConditionReady), fmt.Sprintf("for %d entries", l.Status.Entries))
	})
	if isTrue(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared) {
		t.Errorf("a sweep before anyone came back reports reappeared data: %s", describeSupl(l))
	}

	// The same person, back from a CRM import: other letter case, surrounding spaces, an order
	// with an unmasked address and an invoice.
	back := "  Jane.DOE@Example.COM "
	f.exec(t, `INSERT INTO customers (id, email, name) VALUES ($1, $2, $3)`, subjectIDs["userId"], back, "Jane Doe")
	f.exec(t, `INSERT INTO orders (id, customer_email, address) VALUES ($1, $2, $3)`, 150, back, "1 Main Street")
	f.exec(t, `INSERT INTO invoices (id, customer_email, amount) VALUES ($1, $2, $3)`, 150, back, 7)
	sweepsBefore := getSupl(t, ns, "erased").Status.Sweeps
	l = waitSupl(t, ns, "erased", 40*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		return l.Status.Sweeps > sweepsBefore && isTrue(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared)
	})
	st := suplStore(t, l, "pg")
	// One customer deleted, one order masked; the new invoice is retained like the old one.
	if st.Erased != 2 || st.Retained == 0 || !st.Supported || st.Message != "" {
		t.Errorf("store status after the sweep: %s", describeSupl(l))
	}
	waitEvent(t, ns, "erased", privacyv1alpha1.ReasonDataReappeared, "pg")
	evs, err := eventsAbout(ns, "erased")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Reason == privacyv1alpha1.ReasonDataReappeared && e.Type != corev1.EventTypeWarning {
			t.Errorf("DataReappeared event of type %s", e.Type)
		}
	}
	for query, want := range map[string]int{
		`SELECT COUNT(*) FROM customers WHERE lower(trim(email)) = 'jane.doe@example.com' OR id = 'u-4711'`:                    0,
		`SELECT COUNT(*) FROM orders WHERE lower(trim(customer_email)) = 'jane.doe@example.com' AND address = '1 Main Street'`: 0,
		`SELECT COUNT(*) FROM invoices WHERE lower(trim(customer_email)) = 'jane.doe@example.com'`:                             2,
	} {
		if got := f.count(t, query); got != want {
			t.Errorf("%s: %d, want %d", query, got, want)
		}
	}
	f.assertBystanderIntact(t)

	// The sweep after finds only what is masked or retained: nothing reappeared.
	sweepsBefore = l.Status.Sweeps
	l = waitSupl(t, ns, "erased", 40*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		return l.Status.Sweeps > sweepsBefore
	})
	if !hasReason(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared, metav1.ConditionFalse, privacyv1alpha1.ReasonNoneFound) ||
		suplStore(t, l, "pg").Erased != 0 {
		t.Errorf("the sweep after the re-erasure: %s", describeSupl(l))
	}

	if namespaceHolds(t, ns, "pg-conn", subjectIDs["email"], strings.TrimSpace(back), `"`+subjectIDs["userId"]+`"`) {
		t.Errorf("an object of namespace %s holds an identifier of the person in clear", ns)
	}

	// Every line the manager logged, from its start to its stop, at its most verbose level.
	op.Stop()
	text, lines := readableLogs(t, logs.String())
	// The grep can fail: the logs hold the reconciles of this namespace's request and list.
	for _, seen := range []string{ns, `"controller":"suppressionlist"`, `"controller":"deletionrequest"`} {
		if !strings.Contains(text, seen) {
			t.Fatalf("the captured logs (%d lines) do not mention %s: the grep would see nothing", lines, seen)
		}
	}
	lower := strings.ToLower(text)
	for _, v := range []string{subjectIDs["email"], strings.TrimSpace(back), subjectIDs["userId"], "jane.doe",
		base64.StdEncoding.EncodeToString([]byte(subjectIDs["email"])), base64.StdEncoding.EncodeToString([]byte(subjectIDs["userId"]))} {
		if i := strings.Index(lower, strings.ToLower(v)); i >= 0 {
			t.Errorf("the manager logged an identifier of the person (%q): ...%q...", v, lower[max(i-300, 0):min(i+100, len(lower))])
		}
	}
	t.Logf("%d log lines checked", lines)
}

// A list with action report counts what came back and leaves it in place; rows a request
// masked are not counted as reappeared.
func TestSuppressionListReportCountsAndChangesNothing(t *testing.T) {
	f := startPostgresFixture(t)
	startOperator(t, func(o *operator.Options) { o.EnableSuppressionLists = true })
	ns := newNamespace(t, nil)
	f.dataStore(t, ns, "pg")
	list := suppressionList(ns, "watch", privacyv1alpha1.SuppressionSource{DeletionRequests: &privacyv1alpha1.DeletionRequestsSource{}})
	list.Spec.Action = privacyv1alpha1.SuppressionReport
	create(t, list)
	create(t, secret(ns, "jane", subjectIDs))
	create(t, deletionRequest(ns, "forget", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{ReverifyInterval: &metav1.Duration{Duration: time.Second},
			ReverifyPeriod: &metav1.Duration{Duration: 3 * time.Second}}
	}))
	l := waitSupl(t, ns, "watch", settle, func(l *privacyv1alpha1.SuppressionList) bool {
		return l.Status.Entries > 0 && strings.Contains(condition(l.Status.Conditions, privacyv1alpha1.ConditionReady), fmt.Sprintf("for %d entries", l.Status.Entries))
	})
	if isTrue(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared) {
		t.Errorf("masked and retained rows reported as reappeared: %s", describeSupl(l))
	}
	f.exec(t, `INSERT INTO customers (id, email, name) VALUES ($1, $2, $3)`, "9001", " JANE.doe@example.com", "Jane Doe")
	l = waitSupl(t, ns, "watch", 40*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		return isTrue(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared)
	})
	if !strings.Contains(condition(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared), "left in place") || suplStore(t, l, "pg").Erased != 0 {
		t.Errorf("report sweep: %s", describeSupl(l))
	}
	if n := f.count(t, `SELECT COUNT(*) FROM customers WHERE id = '9001'`); n != 1 {
		t.Errorf("a report list erased a row: %d left", n)
	}
	f.assertBystanderIntact(t)
}

// namespaceHolds reads every Secret (decoded), ConfigMap, SuppressionList, DeletionRequest and
// event of ns and reports whether any holds one of the values, in any letter case. The store
// connection Secret skipSecret is left out: its DSN is no personal data.
func namespaceHolds(t *testing.T, ns, skipSecret string, values ...string) bool {
	t.Helper()
	ctx := context.Background()
	var dump strings.Builder
	var secrets corev1.SecretList
	if err := env.Client.List(ctx, &secrets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var checked []string
	for _, s := range secrets.Items {
		if s.Name == skipSecret {
			continue
		}
		checked = append(checked, s.Name)
		dump.WriteString(mustJSON(t, &s))
		for _, v := range s.Data {
			dump.Write(v)
			dump.WriteByte('\n')
		}
	}
	var cms corev1.ConfigMapList
	var lists privacyv1alpha1.SuppressionListList
	var drs privacyv1alpha1.DeletionRequestList
	var evs corev1.EventList
	for _, l := range []client.ObjectList{&cms, &lists, &drs, &evs} {
		if err := env.Client.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		dump.Write(b)
	}
	if len(lists.Items) == 0 {
		t.Fatalf("nothing to check: no SuppressionList in %s", ns)
	}
	t.Logf("checked Secrets %v, %d ConfigMaps, %d lists, %d requests, %d events", checked, len(cms.Items), len(lists.Items), len(drs.Items), len(evs.Items))
	text := strings.ToLower(dump.String())
	for _, v := range values {
		if strings.Contains(text, strings.ToLower(v)) {
			return true
		}
	}
	return false
}

// dropHash is DROP's hash of a normalised email: standard base64 of its SHA-256.
func dropHash(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func dropSecret(ns, name string, data map[string]string) *corev1.Secret {
	return typedSecret(ns, name, privacyv1alpha1.SecretTypeSuppressionList, data)
}

// reportOf reads the list's DROP report Secret as ID -> status.
func reportOf(t *testing.T, l *privacyv1alpha1.SuppressionList) map[string]string {
	t.Helper()
	if l.Status.ReportSecretName == "" {
		return nil
	}
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: l.Namespace, Name: l.Status.ReportSecretName}, &s); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(s.Data["report.csv"])), "\n")
	if len(lines) == 0 || lines[0] != "ID,Status" {
		t.Fatalf("report.csv has no header: %q", s.Data["report.csv"])
	}
	out := map[string]string{}
	for _, line := range lines[1:] {
		id, status, ok := strings.Cut(line, ",")
		if !ok {
			t.Fatalf("report line %q", line)
		}
		out[id] = status
	}
	return out
}

func describeReport(r map[string]string) string {
	var parts []string
	for id, st := range r {
		parts = append(parts, id+"="+st)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func sameReport(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for id, st := range want {
		if got[id] != st {
			return false
		}
	}
	return true
}

// A DROP download of three items: the one in the store is deleted (3), the one nowhere is not
// found (5), the one only in a retained table is exempted (2). The next download withdraws one
// and adds another; the earlier items and their statuses stay.
func TestSuppressionListDropDownloadAndWithdrawal(t *testing.T) {
	f := startPostgresFixture(t)
	// Carol exists only in the retained invoices; Dave arrives with the second download.
	f.exec(t, `INSERT INTO invoices (id, customer_email, amount) VALUES (300, 'carol@example.com', 9)`)
	f.exec(t, `INSERT INTO customers (id, email, name) VALUES ('400', 'Dave@Example.com', 'Dave')`)
	// Erin's only row is an order already masked: erased, not under a legal hold.
	f.exec(t, `INSERT INTO orders (id, customer_email, address) VALUES (500, 'erin@example.com', NULL)`)
	startOperator(t, func(o *operator.Options) { o.EnableSuppressionLists = true })
	ns := newNamespace(t, nil)
	f.dataStore(t, ns, "pg")
	create(t, dropSecret(ns, "drop-download", map[string]string{"email.csv": "ID,Hash\n" +
		"A-1," + dropHash(subjectIDs["email"]) + "\n" +
		"B-2," + dropHash("nobody@example.com") + "\n" +
		"C-3," + dropHash("carol@example.com") + "\n"}))
	create(t, suppressionList(ns, "drop", privacyv1alpha1.SuppressionSource{DropSecretRef: &privacyv1alpha1.LocalObjectReference{Name: "drop-download"}}))

	want := map[string]string{"A-1": "3", "B-2": "5", "C-3": "2"}
	var report map[string]string
	l := waitSupl(t, ns, "drop", 40*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		report = reportOf(t, l)
		return l.Status.Entries == 3 && sameReport(report, want)
	})
	t.Logf("first download: %s; report %s", describeSupl(l), describeReport(report))
	if !isTrue(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared) || !isTrue(l.Status.Conditions, privacyv1alpha1.ConditionReady) {
		t.Errorf("conditions: %s", conditionsString(l.Status.Conditions))
	}
	// Jane's customer deleted and two orders masked; her invoice and Carol's retained.
	if st := suplStore(t, l, "pg"); st.Erased != 3 || st.Retained != 2 {
		t.Errorf("store status: %s", describeSupl(l))
	}
	f.assertErased(t)
	if n := f.count(t, `SELECT COUNT(*) FROM invoices WHERE customer_email = 'carol@example.com'`); n != 1 {
		t.Errorf("Carol's retained invoice: %d, want 1", n)
	}
	if n := f.count(t, `SELECT COUNT(*) FROM customers WHERE id = '400'`); n != 1 {
		t.Errorf("Dave, not on the list yet, was erased")
	}

	// The next download withdraws B-2 and adds Dave and Erin.
	var dl corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "drop-download"}, &dl); err != nil {
		t.Fatal(err)
	}
	dl.Data = map[string][]byte{
		"email.csv":     []byte("ID,Hash\nD-4," + dropHash("dave@example.com") + "\nE-5," + dropHash("erin@example.com") + "\n"),
		"withdrawn.csv": []byte("ID\nB-2\n"),
	}
	if err := env.Client.Update(context.Background(), &dl); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"A-1": "3", "C-3": "2", "D-4": "3", "E-5": "3"}
	// Downloads are read every minute at the latest.
	l = waitSupl(t, ns, "drop", 100*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		report = reportOf(t, l)
		return l.Status.Entries == 4 && sameReport(report, want)
	})
	t.Logf("second download: %s; report %s", describeSupl(l), describeReport(report))
	if n := f.count(t, `SELECT COUNT(*) FROM customers WHERE id = '400'`); n != 0 {
		t.Errorf("Dave's customer row left: %d", n)
	}
	f.assertErased(t)
	if n := f.count(t, `SELECT COUNT(*) FROM invoices WHERE customer_email = 'carol@example.com'`); n != 1 {
		t.Errorf("Carol's retained invoice: %d, want 1", n)
	}
	// The report is the list's, and holds IDs and codes only.
	var rep corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: l.Status.ReportSecretName}, &rep); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(&rep, l) {
		t.Errorf("the report Secret is not owned by the list: %+v", rep.OwnerReferences)
	}
	if namespaceHolds(t, ns, "pg-conn", subjectIDs["email"], "carol@example.com", "dave@example.com", "erin@example.com") {
		t.Errorf("an object of namespace %s holds an email in clear", ns)
	}
}

// The person comes back with linked rows (a new customer id, an order, an order item): the
// sweep finds them by the email and erases the linked rows through the store's links. A
// bystander whose customer id equals one of the person's old order ids keeps their order: an
// order id on the list is no customer id.
func TestSuppressionListErasesLinkedRowsAndOnlyThem(t *testing.T) {
	db, dsn := linkedShop(t)
	for _, stmt := range []string{
		`INSERT INTO customer VALUES (10, 'bob@example.org')`,
		`INSERT INTO orders VALUES (40, 10)`,
		`INSERT INTO order_item VALUES (400, 40, 'E')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	startOperator(t, func(o *operator.Options) { o.EnableSuppressionLists = true })
	ns := newNamespace(t, nil)
	create(t, connSecret(ns, "shop-conn", map[string]string{"dsn": dsn}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: linkedSpec("shop-conn")})
	create(t, suppressionList(ns, "erased", privacyv1alpha1.SuppressionSource{DeletionRequests: &privacyv1alpha1.DeletionRequestsSource{}}))
	create(t, secret(ns, "jane", map[string]string{"email": "jane.doe@example.com"}))
	create(t, deletionRequest(ns, "forget", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{ReverifyInterval: &metav1.Duration{Duration: time.Second},
			ReverifyPeriod: &metav1.Duration{Duration: 3 * time.Second}}
	}))
	eventually(t, settle, func() (bool, string) {
		dr := getDR(t, ns, "forget")
		return dr.Status.Verification != nil && dr.Status.Verification.IdentifiersSecretDeleted, storesString(dr)
	})
	l := waitSupl(t, ns, "erased", 40*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		return l.Status.Entries > 0 && strings.Contains(condition(l.Status.Conditions, privacyv1alpha1.ConditionReady), fmt.Sprintf("for %d entries", l.Status.Entries))
	})
	if isTrue(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared) {
		t.Errorf("a sweep before anyone came back: %s", describeSupl(l))
	}
	for _, stmt := range []string{
		`INSERT INTO customer VALUES (3, ' JANE.Doe@Example.com  ')`,
		`INSERT INTO orders VALUES (30, 3)`,
		`INSERT INTO order_item VALUES (300, 30, 'F')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	l = waitSupl(t, ns, "erased", 40*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		return isTrue(l.Status.Conditions, privacyv1alpha1.ConditionDataReappeared)
	})
	t.Logf("%s", describeSupl(l))
	if st := suplStore(t, l, "shop"); st.Erased != 3 {
		t.Errorf("erased: %s", describeSupl(l))
	}
	for query, want := range map[string]int{
		`SELECT COUNT(*) FROM customer WHERE id IN (1, 3)`:       0,
		`SELECT COUNT(*) FROM orders WHERE id = 30`:              0,
		`SELECT COUNT(*) FROM order_item WHERE id = 300`:         0,
		`SELECT COUNT(*) FROM customer WHERE id IN (2, 10)`:      2,
		`SELECT COUNT(*) FROM orders WHERE id IN (20, 40)`:       2,
		`SELECT COUNT(*) FROM order_item WHERE id IN (200, 400)`: 2,
	} {
		if got := countRows(t, db, query); got != want {
			t.Errorf("%s: %d, want %d", query, got, want)
		}
	}
}
