package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// linkedDB is a PostgreSQL database of the linked crash test.
func linkedDB(t *testing.T, stmts ...string) (*sql.DB, string) {
	t.Helper()
	dsn, err := teststore.SharedPostgres(t).CreateDatabase(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return db, dsn
}

func rowCount(t *testing.T, db *sql.DB, query string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// The CRM provides the customer id from the email; the shop's orders and order items hang off it
// in another database. The manager is SIGKILLed after the CRM erased and while the shop's erasure
// waits on a lock; the restarted manager finishes with the counts of the plan. After completion a
// restored login row of the deleted customer is found again (its id is known only from the
// derived values Secret, the customer row being gone) and reported as DataReappeared.
func TestSIGKILLedManagerFinishesLinkedErasureAndFindsRestoredRows(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	ctx := context.Background()
	ns := newNamespace(t, env.Client, nil)
	crm, crmDSN := linkedDB(t,
		`CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT NOT NULL)`,
		`CREATE TABLE login (id SERIAL PRIMARY KEY, customer_id INTEGER NOT NULL, at TEXT)`,
		`INSERT INTO customer VALUES (1, 'jane.doe@example.com'), (2, 'bystander@example.com')`,
		`INSERT INTO login (customer_id, at) VALUES (1, 'mon'), (1, 'tue'), (1, 'wed'), (2, 'mon')`)
	shopDB, shopDSN := linkedDB(t,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL)`,
		`CREATE TABLE order_item (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders (id), sku TEXT)`,
		`INSERT INTO orders VALUES (10, 1), (11, 1), (20, 2)`,
		`INSERT INTO order_item VALUES (100, 10, 'A'), (101, 10, 'B'), (102, 11, 'C'), (200, 20, 'D')`)

	create(t, env.Client, connSecret(ns, "crm-conn", map[string]string{"dsn": crmDSN}))
	create(t, env.Client, connSecret(ns, "shop-conn", map[string]string{"dsn": shopDSN}))
	pgConn := func(name string) privacyv1alpha1.Connection {
		return privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: name, Key: "dsn"},
			// The shop's erasure waits on the held lock; it must not time out meanwhile.
			Timeout: &metav1.Duration{Duration: 2 * time.Minute}}
	}
	create(t, env.Client, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "crm"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type: privacyv1alpha1.StoreTypePostgres, Connection: pgConn("crm-conn"),
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "customer", Action: privacyv1alpha1.ActionDelete,
				Match:    []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}},
				Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "customerId", Column: "id"}}},
			{Name: "login", Action: privacyv1alpha1.ActionDelete,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_id", Identifier: "customerId"}}},
		}}})
	create(t, env.Client, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type: privacyv1alpha1.StoreTypePostgres, Connection: pgConn("shop-conn"),
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "orders", Action: privacyv1alpha1.ActionDelete,
				Match:    []privacyv1alpha1.ColumnMatch{{Column: "customer_id", Identifier: "customerId"}},
				Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "orderId", Column: "id"}}},
			{Name: "order_item", Action: privacyv1alpha1.ActionDelete,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "order_id", Identifier: "orderId"}}},
		}}})
	create(t, env.Client, secret(ns, "jane", map[string]string{"email": "jane.doe@example.com"}))

	// Reads go on under EXCLUSIVE (the derivation and the plan), the shop's DELETE waits.
	lockConn, err := shopDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lockTx, err := lockConn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockTx.Exec(`LOCK TABLE orders IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			_ = lockTx.Rollback()
			_ = lockConn.Close()
		}
	}
	t.Cleanup(release)

	first := startManager(t, "first", managerOptions{})
	create(t, env.Client, deletionRequest(ns, "erase-jane", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{ReverifyInterval: &metav1.Duration{Duration: 2 * time.Second},
			ReverifyPeriod: &metav1.Duration{Duration: time.Hour}}
	}))
	shopWaiting := func() int64 {
		return rowCount(t, shopDB, `SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`)
	}
	eventually(t, settle, func() (bool, string) {
		dr := getDR(t, env.Client, ns, "erase-jane")
		crmDone := rowCount(t, crm, `SELECT COUNT(*) FROM login WHERE customer_id = 1`) == 0
		return crmDone && shopWaiting() >= 1, fmt.Sprintf("crm erased %v, shop erasures waiting %d; %s", crmDone, shopWaiting(), describe(dr))
	})
	before := getDR(t, env.Client, ns, "erase-jane")
	first.Kill()
	if completed(before) {
		t.Fatal("the request completed although the shop's erasure was held: the test proves nothing")
	}
	if n := rowCount(t, shopDB, `SELECT COUNT(*) FROM orders WHERE customer_id = 1`); n != 2 {
		t.Fatalf("the shop lost %d of the subject's orders before the crash", 2-n)
	}
	t.Logf("SIGKILLed the manager mid-erasure: %s", describe(before))

	release()
	startManager(t, "second", managerOptions{})
	dr := waitDR(t, env.Client, ns, "erase-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, 2*settle)

	// The subject's linked rows are gone in both databases, the bystander's are all there.
	for db, counts := range map[*sql.DB]map[string]int64{
		crm: {`SELECT COUNT(*) FROM customer WHERE id = 1`: 0, `SELECT COUNT(*) FROM login WHERE customer_id = 1`: 0,
			`SELECT COUNT(*) FROM customer WHERE id = 2`: 1, `SELECT COUNT(*) FROM login WHERE customer_id = 2`: 1},
		shopDB: {`SELECT COUNT(*) FROM orders WHERE customer_id = 1`: 0, `SELECT COUNT(*) FROM order_item WHERE order_id IN (10, 11)`: 0,
			`SELECT COUNT(*) FROM orders WHERE id = 20`: 1, `SELECT COUNT(*) FROM order_item WHERE id = 200`: 1},
	} {
		for q, want := range counts {
			if got := rowCount(t, db, q); got != want {
				t.Errorf("%s: %d, want %d", q, got, want)
			}
		}
	}
	// The counts are the plan's, not those of a repeated erase that found nothing.
	want := map[string]int64{"crm": 4, "shop": 5}
	for name, erased := range want {
		if st := storeStatus(t, dr, name); st.Erased != erased || st.Remaining != 0 {
			t.Errorf("store %s: erased %d, want %d; remaining %d", name, st.Erased, erased, st.Remaining)
		}
	}
	rc := verifyReceipt(t, env.Client, dr)
	for _, s := range rc.Stores {
		if s.Erased != want[s.Name] {
			t.Errorf("receipt: store %s erased %d, want %d", s.Name, s.Erased, want[s.Name])
		}
	}
	var derived corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "erase-jane-derived"}, &derived); err != nil {
		t.Fatalf("the derived values Secret: %v", err)
	}

	// A backup restores one login of the deleted customer: only the derived customer id finds it.
	if _, err := crm.Exec(`INSERT INTO login (customer_id, at) VALUES (1, 'restored')`); err != nil {
		t.Fatal(err)
	}
	dr = waitDR(t, env.Client, ns, "erase-jane", privacyv1alpha1.ConditionVerified, metav1.ConditionFalse, privacyv1alpha1.ReasonDataReappeared, settle)
	if st := storeStatus(t, dr, "crm"); st.Phase != privacyv1alpha1.StoreReappeared || st.Remaining != 1 {
		t.Errorf("crm after the restore: %s, remaining %d", st.Phase, st.Remaining)
	}
	if st := storeStatus(t, dr, "shop"); st.Phase != privacyv1alpha1.StoreVerified {
		t.Errorf("shop after the restore: %s", st.Phase)
	}
}
