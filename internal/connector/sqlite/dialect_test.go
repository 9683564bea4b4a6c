package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/data/app.db", "file:/data/app.db?_pragma=busy_timeout%2810000%29&_txlock=immediate&mode=rw"},
		{"rel/app.db", "file:rel/app.db?_pragma=busy_timeout%2810000%29&_txlock=immediate&mode=rw"},
		{"/d/a b#?.db", "file:/d/a%20b%23%3F.db?_pragma=busy_timeout%2810000%29&_txlock=immediate&mode=rw"},
		{"file:/data/app.db?mode=ro", "file:/data/app.db?_pragma=busy_timeout%2810000%29&_txlock=immediate&mode=ro"},
		{"file:app.db?_pragma=busy_timeout(50)&_txlock=deferred", "file:app.db?_pragma=busy_timeout%2850%29&_txlock=deferred&mode=rw"},
	} {
		got, err := DSN([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("DSN(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "  ", "file:x.db?a=%zz"} {
		if _, err := DSN([]byte(bad)); err == nil {
			t.Errorf("DSN(%q) accepted", bad)
		}
	}
}

func newClient(t *testing.T, path string, tables ...privacyv1alpha1.TableMapping) (connector.Client, error) {
	t.Helper()
	return clientFor(t, path, &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeSQLite, Tables: tables})
}

// newUnhurriedClient is a client whose statements may take ten minutes: for tests of what a
// statement can hold, not how fast it runs (the race detector slows the pure-Go driver tenfold).
func newUnhurriedClient(t *testing.T, path string, tables ...privacyv1alpha1.TableMapping) connector.Client {
	t.Helper()
	c, err := clientFor(t, path, &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeSQLite, Tables: tables,
		Connection: privacyv1alpha1.Connection{Timeout: &metav1.Duration{Duration: 10 * time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func clientFor(t *testing.T, path string, spec *privacyv1alpha1.DataStoreSpec) (connector.Client, error) {
	t.Helper()
	c, err := NewProvider(sqlstore.Options{}).NewClient(context.Background(),
		connector.Config{Spec: spec, Secret: []byte(path), HashSalt: []byte("salt")})
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func setup(t *testing.T, stmts ...string) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	for _, s := range stmts {
		if _, err := raw.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path, raw
}

var deleteByEmail = privacyv1alpha1.TableMapping{Name: "people", Action: privacyv1alpha1.ActionDelete,
	Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}}

func TestMissingFileIsNotCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.db")
	_, err := newClient(t, path, deleteByEmail)
	if connector.KindOf(err) != connector.KindUnavailable || err == nil {
		t.Fatalf("want Unavailable, got %v", err)
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
		t.Fatalf("the connector created %s", path)
	}
}

// TestNoCaseAndWithoutRowid: a NOCASE column, its index and a WITHOUT ROWID table still
// compare exactly.
func TestNoCaseAndWithoutRowid(t *testing.T) {
	path, raw := setup(t,
		"CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE, name TEXT) WITHOUT ROWID",
		"CREATE INDEX people_email ON people (email)",
		"INSERT INTO people VALUES (1, 'alice@example.com', 'A'), (2, 'ALICE@EXAMPLE.COM', 'B'), (3, 'alice@example.com ', 'C')",
		"CREATE TABLE notes (id INTEGER PRIMARY KEY, owner, body TEXT COLLATE RTRIM)",
		"CREATE INDEX notes_body ON notes (body)",
		"INSERT INTO notes VALUES (1, 42, 'alice@example.com'), (2, '42', 'x'), (3, 42.0, 'alice@example.com   '), (4, x'3432', 'y')",
	)
	// The columns compare exactly (as: exact): a NOCASE or RTRIM collation must not fold what
	// exact comparison keeps apart.
	exactByEmail := *deleteByEmail.DeepCopy()
	exactByEmail.Match[0].As = privacyv1alpha1.MatchExact
	c, err := newClient(t, path, exactByEmail,
		privacyv1alpha1.TableMapping{Name: "notes", Action: privacyv1alpha1.ActionMask,
			Match: []privacyv1alpha1.ColumnMatch{{Column: "body", Identifier: "email", As: privacyv1alpha1.MatchExact}, {Column: "owner", Identifier: "userId"}},
			Mask:  []privacyv1alpha1.ColumnMask{{Column: "body", Strategy: privacyv1alpha1.MaskRedact}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check, err := c.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(check.Warnings, ";") != "column owner of table notes has no index: erasure scans the table" {
		t.Errorf("warnings: %q", check.Warnings)
	}
	res, err := c.Erase(ctx, connector.Request{Identifiers: connector.Identifiers{"email": "alice@example.com", "userId": "42"}})
	if err != nil {
		t.Fatal(err)
	}
	// people: only the exact address. notes: row 1 (body and owner), row 2 (owner '42' as text
	// is the same text); row 3's owner 42.0 reads "42.0" and its body has trailing spaces; row 4's
	// owner is a blob.
	if res.Erased != 1 || res.Masked != 2 {
		t.Errorf("Erase: %+v", res)
	}
	var left int
	if err := raw.QueryRow("SELECT count(*) FROM people WHERE name IN ('B', 'C')").Scan(&left); err != nil || left != 2 {
		t.Errorf("NOCASE bystanders left: %d %v", left, err)
	}
	rows, err := raw.Query("SELECT id, body FROM notes ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := []string{privacyv1alpha1.RedactedMarker, privacyv1alpha1.RedactedMarker, "alice@example.com   ", "y"}
	for i := 0; rows.Next(); i++ {
		var id int
		var body string
		if err := rows.Scan(&id, &body); err != nil {
			t.Fatal(err)
		}
		if body != want[i] {
			t.Errorf("notes %d body %q, want %q", id, body, want[i])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestClassify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-db")
	if err := os.WriteFile(path, []byte(strings.Repeat("this is not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := newClient(t, path, deleteByEmail)
	if connector.KindOf(err) != connector.KindInvalid || err == nil {
		t.Fatalf("a file that is not a database: want Invalid, got %v", err)
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		t.Fatal("the driver error must not be reachable")
	}
}

func TestLeadingKeyOfCreateIndex(t *testing.T) {
	for stmt, want := range map[string]string{
		`CREATE INDEX "p_e" ON "people" (lower(trim("email")))`:     `lower(trim("email"))`,
		`CREATE UNIQUE INDEX x ON t (LOWER(TRIM(email)) DESC, id)`:  `LOWER(TRIM(email))`,
		`CREATE INDEX x ON t (substr(name, 1, 3), id) WHERE id > 0`: `substr(name, 1, 3)`,
		"CREATE INDEX x ON t (`a,b`)":                               "`a,b`",
		`CREATE INDEX x ON t (lower(trim(email)) COLLATE NOCASE)`:   `lower(trim(email)) COLLATE NOCASE`,
		`CREATE INDEX "on (x" ON t ((a))`:                           `(a)`,
	} {
		if got := leadingKey(stmt); got != want {
			t.Errorf("leadingKey(%q) = %q, want %q", stmt, got, want)
		}
	}
}
