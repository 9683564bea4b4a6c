package controllers_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	_ "modernc.org/sqlite"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// The subject and a bystander whose identifiers differ from the subject's only slightly.
var (
	subjectIDs   = map[string]string{"email": "jane.doe@example.com", "userId": "u-4711"}
	bystanderIDs = map[string]string{"email": "jane.doe@example.co", "userId": "u-47110"}
)

// sqlFixture is a SQL database seeded with the subject's and the bystander's rows: customers are
// deleted, orders masked, invoices retained.
type sqlFixture struct {
	db          *sql.DB
	driver      string
	dsn         string
	storeType   privacyv1alpha1.StoreType
	placeholder func(int) string
}

func (f *sqlFixture) ph(i int) string { return f.placeholder(i) }

func startPostgresFixture(t *testing.T) *sqlFixture {
	pg := teststore.SharedPostgres(t)
	dsn, err := pg.CreateDatabase(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return openFixture(t, "pgx", dsn, dsn, privacyv1alpha1.StoreTypePostgres, pgPlaceholder)
}

func startMariaDBFixture(t *testing.T) *sqlFixture {
	m := teststore.SharedMariaDB(t)
	dsn, err := m.CreateDatabase(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return openFixture(t, "mysql", dsn, dsn, privacyv1alpha1.StoreTypeMySQL, func(int) string { return "?" })
}

func startSQLiteFixture(t *testing.T) *sqlFixture {
	path := filepath.Join(t.TempDir(), "shop.db")
	return openFixture(t, "sqlite", path, path, privacyv1alpha1.StoreTypeSQLite, func(int) string { return "?" })
}

func openFixture(t *testing.T, driver, openDSN, secretValue string, typ privacyv1alpha1.StoreType, ph func(int) string) *sqlFixture {
	t.Helper()
	db, err := sql.Open(driver, openDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	f := &sqlFixture{db: db, driver: driver, dsn: secretValue, storeType: typ, placeholder: ph}
	for _, stmt := range []string{
		`CREATE TABLE customers (id VARCHAR(64) NOT NULL, email VARCHAR(255) NOT NULL, name VARCHAR(255))`,
		`CREATE INDEX customers_email ON customers (email)`,
		`CREATE INDEX customers_id ON customers (id)`,
		`CREATE TABLE orders (id INTEGER NOT NULL, customer_email VARCHAR(255) NOT NULL, address VARCHAR(255))`,
		`CREATE INDEX orders_email ON orders (customer_email)`,
		`CREATE TABLE invoices (id INTEGER NOT NULL, customer_email VARCHAR(255) NOT NULL, amount INTEGER)`,
		`CREATE INDEX invoices_email ON invoices (customer_email)`,
	} {
		f.exec(t, stmt)
	}
	f.seed(t, subjectIDs, 100)
	f.seed(t, bystanderIDs, 200)
	return f
}

// seed inserts one customer, two orders and one invoice for a person.
func (f *sqlFixture) seed(t *testing.T, ids map[string]string, base int) {
	t.Helper()
	f.exec(t, fmt.Sprintf(`INSERT INTO customers (id, email, name) VALUES (%s, %s, %s)`, f.ph(1), f.ph(2), f.ph(3)), ids["userId"], ids["email"], "Name "+ids["userId"])
	for i := 0; i < 2; i++ {
		f.exec(t, fmt.Sprintf(`INSERT INTO orders (id, customer_email, address) VALUES (%s, %s, %s)`, f.ph(1), f.ph(2), f.ph(3)), base+i, ids["email"], "1 Main Street")
	}
	f.exec(t, fmt.Sprintf(`INSERT INTO invoices (id, customer_email, amount) VALUES (%s, %s, %s)`, f.ph(1), f.ph(2), f.ph(3)), base, ids["email"], 42)
}

func (f *sqlFixture) exec(t *testing.T, stmt string, args ...any) {
	t.Helper()
	if _, err := f.db.Exec(stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func (f *sqlFixture) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// assertErased checks the rows: the subject's customer gone, orders masked, invoice kept; the
// bystander untouched.
func (f *sqlFixture) assertErased(t *testing.T) {
	t.Helper()
	q := func(s string) string { return fmt.Sprintf(s, f.ph(1)) }
	if n := f.count(t, q(`SELECT COUNT(*) FROM customers WHERE email = %s`), subjectIDs["email"]); n != 0 {
		t.Errorf("%s: subject's customer rows left: %d", f.storeType, n)
	}
	if n := f.count(t, q(`SELECT COUNT(*) FROM orders WHERE customer_email = %s AND address = '1 Main Street'`), subjectIDs["email"]); n != 0 {
		t.Errorf("%s: subject's orders unmasked: %d", f.storeType, n)
	}
	if n := f.count(t, q(`SELECT COUNT(*) FROM orders WHERE customer_email = %s`), subjectIDs["email"]); n != 2 {
		t.Errorf("%s: subject's masked orders: %d, want 2 kept", f.storeType, n)
	}
	if n := f.count(t, q(`SELECT COUNT(*) FROM invoices WHERE customer_email = %s`), subjectIDs["email"]); n != 1 {
		t.Errorf("%s: subject's retained invoices: %d, want 1", f.storeType, n)
	}
	f.assertBystanderIntact(t)
}

func (f *sqlFixture) assertBystanderIntact(t *testing.T) {
	t.Helper()
	q := func(s string) string { return fmt.Sprintf(s, f.ph(1)) }
	if n := f.count(t, q(`SELECT COUNT(*) FROM customers WHERE email = %s`), bystanderIDs["email"]); n != 1 {
		t.Errorf("%s: bystander customers: %d, want 1", f.storeType, n)
	}
	if n := f.count(t, q(`SELECT COUNT(*) FROM orders WHERE customer_email = %s AND address = '1 Main Street'`), bystanderIDs["email"]); n != 2 {
		t.Errorf("%s: bystander orders intact: %d, want 2", f.storeType, n)
	}
	if n := f.count(t, q(`SELECT COUNT(*) FROM invoices WHERE customer_email = %s`), bystanderIDs["email"]); n != 1 {
		t.Errorf("%s: bystander invoices: %d, want 1", f.storeType, n)
	}
}

// dataStore creates the Secret and the DataStore of the fixture in ns.
func (f *sqlFixture) dataStore(t *testing.T, ns, name string) *privacyv1alpha1.DataStore {
	t.Helper()
	create(t, connSecret(ns, name+"-conn", map[string]string{"dsn": f.dsn}))
	ds := &privacyv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       f.spec(name + "-conn"),
	}
	create(t, ds)
	return ds
}

func (f *sqlFixture) spec(secretName string) privacyv1alpha1.DataStoreSpec {
	return privacyv1alpha1.DataStoreSpec{
		Type: f.storeType,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: secretName, Key: "dsn"},
			Timeout: &metav1.Duration{Duration: 5e9}},
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "customers", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{
				{Column: "email", Identifier: "email"}, {Column: "id", Identifier: "userId"}}},
			{Name: "orders", Action: privacyv1alpha1.ActionMask, Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_email", Identifier: "email"}},
				Mask: []privacyv1alpha1.ColumnMask{{Column: "address", Strategy: privacyv1alpha1.MaskRedact}}},
			{Name: "invoices", Action: privacyv1alpha1.ActionRetain, Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_email", Identifier: "email"}},
				RetainReason: "tax law: invoices are kept for 10 years"},
		},
		Description:    "Shop database (" + string(f.storeType) + ")",
		Purposes:       []string{"Performing the purchase contract"},
		DataCategories: []string{"Contact details", "Orders"},
		Retention:      "Invoices 10 years",
		Recipients:     []string{"Payment provider"},
	}
}

func pgPlaceholder(i int) string { return fmt.Sprintf("$%d", i) }

// reopen reconnects after the server was restarted.
func (f *sqlFixture) reopen(t *testing.T) {
	t.Helper()
	db, err := sql.Open(f.driver, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	f.db = db
}

// storeDownAtFirst starts a PostgreSQL server of the test's own with the fixture, the operator and
// a DataStore for it in a new namespace, then stops the server: requests filed next find it down.
func storeDownAtFirst(t *testing.T) (*teststore.Postgres, *sqlFixture, string) {
	t.Helper()
	pg, err := teststore.StartPostgres(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	dsn, err := pg.CreateDatabase(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	f := openFixture(t, "pgx", dsn, dsn, privacyv1alpha1.StoreTypePostgres, pgPlaceholder)
	startOperator(t)
	ns := newNamespace(t, nil)
	f.dataStore(t, ns, "pg")
	_ = f.db.Close()
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	return pg, f, ns
}
