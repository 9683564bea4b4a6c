package e2e

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	_ "modernc.org/sqlite"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// person is a data subject or a bystander: what the identifiers Secret holds and what the stores
// hold about them.
type person struct {
	email, userID string
}

func (p person) ids() map[string]string {
	return map[string]string{"email": p.email, "userId": p.userID}
}

// Per person the shop holds one customer (deleted), two orders (masked) and one invoice (retained).
const (
	wantErased   = 1
	wantMasked   = 2
	wantRetained = 1
)

// shop is a SQL database with the customers/orders/invoices schema. Text columns are TEXT so that
// any identifier fits, however long.
type shop struct {
	db        *sql.DB
	driver    string
	dsn       string
	storeType privacyv1alpha1.StoreType
	nextID    int
}

func openShop(t *testing.T, typ privacyv1alpha1.StoreType, dsn string) *shop {
	t.Helper()
	driver := map[privacyv1alpha1.StoreType]string{
		privacyv1alpha1.StoreTypePostgres: "pgx", privacyv1alpha1.StoreTypeMySQL: "mysql", privacyv1alpha1.StoreTypeSQLite: "sqlite",
	}[typ]
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s := &shop{db: db, driver: driver, dsn: dsn, storeType: typ}
	// MySQL indexes TEXT only by a prefix; the others index it whole.
	idx := func(col string) string {
		if typ == privacyv1alpha1.StoreTypeMySQL {
			return col + "(255)"
		}
		return col
	}
	for _, stmt := range []string{
		`CREATE TABLE customers (id TEXT NOT NULL, email TEXT NOT NULL, name TEXT)`,
		`CREATE INDEX customers_email ON customers (` + idx("email") + `)`,
		`CREATE INDEX customers_id ON customers (` + idx("id") + `)`,
		`CREATE TABLE orders (id INTEGER NOT NULL, customer_email TEXT NOT NULL, address TEXT)`,
		`CREATE INDEX orders_email ON orders (` + idx("customer_email") + `)`,
		`CREATE TABLE invoices (id INTEGER NOT NULL, customer_email TEXT NOT NULL, amount INTEGER)`,
		`CREATE INDEX invoices_email ON invoices (` + idx("customer_email") + `)`,
	} {
		s.exec(t, stmt)
	}
	return s
}

func (s *shop) ph(i int) string {
	if s.storeType == privacyv1alpha1.StoreTypePostgres {
		return fmt.Sprintf("$%d", i)
	}
	return "?"
}

// mysqlEquals finds "column = ?" in the test's own queries.
var mysqlEquals = regexp.MustCompile(`(\w+) = \?`)

// q adapts a query written with "?" to the shop's dialect. In MySQL every "col = ?" becomes a byte
// comparison: the default collations ignore case and trailing spaces, and the test must see exactly
// which rows are left, as the operator must erase exactly the subject's.
func (s *shop) q(stmt string) string {
	if s.storeType == privacyv1alpha1.StoreTypeMySQL {
		stmt = mysqlEquals.ReplaceAllString(stmt, "CAST($1 AS BINARY) = CAST(? AS BINARY)")
	}
	n := 0
	return replaceEach(stmt, "?", func() string { n++; return s.ph(n) })
}

func replaceEach(s, old string, next func() string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(next())
		s = s[i+len(old):]
	}
}

func (s *shop) exec(t *testing.T, stmt string, args ...any) {
	t.Helper()
	if _, err := s.db.Exec(s.q(stmt), args...); err != nil {
		t.Fatalf("%s: %s: %v", s.storeType, stmt, err)
	}
}

func (s *shop) count(t *testing.T, stmt string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(s.q(stmt), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %s: %v", s.storeType, stmt, err)
	}
	return n
}

// seed stores one customer, two orders and one invoice for p.
func (s *shop) seed(t *testing.T, p person) {
	t.Helper()
	s.exec(t, `INSERT INTO customers (id, email, name) VALUES (?, ?, ?)`, p.userID, p.email, fmt.Sprintf("Customer %d", s.nextID))
	for i := 0; i < 2; i++ {
		s.nextID++
		s.exec(t, `INSERT INTO orders (id, customer_email, address) VALUES (?, ?, ?)`, s.nextID, p.email, "1 Main Street")
	}
	s.nextID++
	s.exec(t, `INSERT INTO invoices (id, customer_email, amount) VALUES (?, ?, ?)`, s.nextID, p.email, 42)
}

// assertErased: p's customer gone, orders masked but kept, invoice kept.
func (s *shop) assertErased(t *testing.T, p person) {
	t.Helper()
	if n := s.count(t, `SELECT COUNT(*) FROM customers WHERE email = ? OR id = ?`, p.email, p.userID); n != 0 {
		t.Errorf("%s: %d customer rows of %s left", s.storeType, n, label(p))
	}
	if n := s.count(t, `SELECT COUNT(*) FROM orders WHERE customer_email = ? AND address = '1 Main Street'`, p.email); n != 0 {
		t.Errorf("%s: %d orders of %s unmasked", s.storeType, n, label(p))
	}
	if n := s.count(t, `SELECT COUNT(*) FROM orders WHERE customer_email = ?`, p.email); n != wantMasked {
		t.Errorf("%s: %d masked orders of %s, want %d kept", s.storeType, n, label(p), wantMasked)
	}
	if n := s.count(t, `SELECT COUNT(*) FROM invoices WHERE customer_email = ?`, p.email); n != wantRetained {
		t.Errorf("%s: %d invoices of %s, want %d retained", s.storeType, n, label(p), wantRetained)
	}
}

// assertIntact: everything of p is still there, unchanged.
func (s *shop) assertIntact(t *testing.T, p person) {
	t.Helper()
	if n := s.count(t, `SELECT COUNT(*) FROM customers WHERE email = ? AND id = ?`, p.email, p.userID); n != 1 {
		t.Errorf("%s: bystander %s: %d customer rows, want 1", s.storeType, label(p), n)
	}
	if n := s.count(t, `SELECT COUNT(*) FROM orders WHERE customer_email = ? AND address = '1 Main Street'`, p.email); n != 2 {
		t.Errorf("%s: bystander %s: %d intact orders, want 2", s.storeType, label(p), n)
	}
	if n := s.count(t, `SELECT COUNT(*) FROM invoices WHERE customer_email = ?`, p.email); n != 1 {
		t.Errorf("%s: bystander %s: %d invoices, want 1", s.storeType, label(p), n)
	}
}

// snapshot is every row of the shop, for comparing what a run changed.
func (s *shop) snapshot(t *testing.T) map[string]bool {
	t.Helper()
	rows := map[string]bool{}
	for _, q := range []string{
		`SELECT 'c', id, email, COALESCE(name, '<null>') FROM customers`,
		`SELECT 'o', CAST(id AS CHAR(20)), customer_email, COALESCE(address, '<null>') FROM orders`,
		`SELECT 'i', CAST(id AS CHAR(20)), customer_email, CAST(amount AS CHAR(20)) FROM invoices`,
	} {
		if s.storeType == privacyv1alpha1.StoreTypePostgres || s.storeType == privacyv1alpha1.StoreTypeSQLite {
			q = strings.ReplaceAll(q, "AS CHAR(20)", "AS TEXT")
		}
		s.scanRows(t, q, func(a, b, c, d string) { rows[strings.Join([]string{a, b, c, d}, "\x1f")] = true })
	}
	return rows
}

func (s *shop) scanRows(t *testing.T, q string, row func(a, b, c, d string)) {
	t.Helper()
	r, err := s.db.Query(q)
	if err != nil {
		t.Fatalf("%s: %s: %v", s.storeType, q, err)
	}
	defer r.Close()
	for r.Next() {
		var a, b, c, d string
		if err := r.Scan(&a, &b, &c, &d); err != nil {
			t.Fatal(err)
		}
		row(a, b, c, d)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

// spec maps the shop: customers deleted by email or user id, orders' addresses redacted,
// invoices retained for tax law.
func shopSpec(typ privacyv1alpha1.StoreType, secretName string, timeout time.Duration) privacyv1alpha1.DataStoreSpec {
	return privacyv1alpha1.DataStoreSpec{
		Type: typ,
		Connection: privacyv1alpha1.Connection{
			SecretRef: &privacyv1alpha1.SecretKeySelector{Name: secretName, Key: "dsn"},
			Timeout:   &metav1.Duration{Duration: timeout},
		},
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "customers", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{
				{Column: "email", Identifier: "email"}, {Column: "id", Identifier: "userId"}}},
			{Name: "orders", Action: privacyv1alpha1.ActionMask, Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_email", Identifier: "email"}},
				Mask: []privacyv1alpha1.ColumnMask{{Column: "address", Strategy: privacyv1alpha1.MaskRedact}}},
			{Name: "invoices", Action: privacyv1alpha1.ActionRetain, Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_email", Identifier: "email"}},
				RetainReason: "tax law: invoices are kept for 10 years"},
		},
		Description: "Shop database (" + string(typ) + ")",
	}
}

// dataStore creates the shop's connection Secret and DataStore in ns.
func (s *shop) dataStore(t *testing.T, c client.Client, ns, name string, timeout time.Duration) {
	t.Helper()
	create(t, c, connSecret(ns, name+"-conn", map[string]string{"dsn": s.dsn}))
	create(t, c, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: shopSpec(s.storeType, name+"-conn", timeout)})
}

func sqliteShop(t *testing.T) *shop {
	t.Helper()
	return openShop(t, privacyv1alpha1.StoreTypeSQLite, filepath.Join(t.TempDir(), "shop.db"))
}

// label names a person in messages without printing a hostile value whole.
func label(p person) string {
	v := p.userID
	if len(v) > 24 {
		v = v[:24] + fmt.Sprintf("...(%d bytes)", len(v))
	}
	return fmt.Sprintf("%q", v)
}
