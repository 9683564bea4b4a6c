// Package sqltest is the conformance suite every SQL connector runs against a real database,
// and the shared fuzz target of the query builders.
package sqltest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// Server is a database server the suite may stop and start again.
type Server interface {
	Stop() error
	Start(ctx context.Context) error
}

// Harness is what the suite needs from one dialect.
type Harness struct {
	Dialect sqlstore.Dialect
	// NewDatabase returns the secret of a fresh, empty database.
	NewDatabase func(t *testing.T) string
	// Server is stopped and restarted by the outage tests; nil when there is no server.
	Server Server
	// WrongPassword returns secret with a wrong password; nil when the store has no passwords.
	WrongPassword func(secret string) string
	// Unreachable is a secret pointing at nothing that listens (or no file).
	Unreachable func(t *testing.T) string
	// Malformed is a secret the driver cannot parse.
	Malformed string
	// NewSchema creates a second schema (a PostgreSQL schema, a MySQL database) visible to
	// secret's connection and returns its name; nil when the dialect has none.
	NewSchema func(t *testing.T, raw *sql.DB) string
	// RejectsNUL: the database's text cannot hold NUL (PostgreSQL).
	RejectsNUL bool
	// CaseSensitiveText is a column type whose comparisons respect letter case where the
	// default text type's do not (MySQL: a _bin collation); empty for VARCHAR(255).
	CaseSensitiveText string
	// LowerFoldsASCIIOnly: the database's lower() folds ASCII letters only (SQLite, PostgreSQL
	// under the C locale), so a non-ASCII letter in another case escapes the SQL prefilter.
	LowerFoldsASCIIOnly bool
	// EmailIndexDDL is the statement Check must advise for people.email without any index.
	EmailIndexDDL string
}

// testSalt salts the hash strategy in every test.
var testSalt = []byte("conformance-salt-0123456789abcdef")

// expectedHash is what the hash strategy must write for value.
func expectedHash(value string) string {
	sum := sha256.Sum256(append(append([]byte(nil), testSalt...), value...))
	return hex.EncodeToString(sum[:])
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// db is a database the test sets up and inspects with its own connection.
type db struct {
	h      Harness
	secret string
	raw    *sql.DB
}

func (h Harness) newDB(t *testing.T) *db {
	t.Helper()
	secret := h.NewDatabase(t)
	raw, err := h.Dialect.Open([]byte(secret), nil)
	if err != nil {
		t.Fatalf("open raw connection: %v", err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	return &db{h: h, secret: secret, raw: raw}
}

func (d *db) exec(t *testing.T, stmt string, args ...any) {
	t.Helper()
	if _, err := d.raw.ExecContext(ctxFor(t), stmt, args...); err != nil {
		t.Fatalf("exec %q: %v", stmt, err)
	}
}

// insert adds rows to table; nil is NULL.
func (d *db) insert(t *testing.T, table string, cols []string, rows ...[]any) {
	t.Helper()
	marks := make([]string, len(cols))
	for i := range cols {
		marks[i] = d.h.Dialect.Placeholder(i + 1)
	}
	stmt := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(cols, ", "), strings.Join(marks, ", "))
	for _, r := range rows {
		d.exec(t, stmt, r...)
	}
}

// cell renders a scanned value with its Go type, so that a change of type counts as a change.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return fmt.Sprintf("%q", x)
	case string:
		return fmt.Sprintf("%q", x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprintf("%T(%v)", x, x)
	}
}

// rows reads table as id -> column -> rendered value.
func (d *db) rows(t *testing.T, table string) map[int64]map[string]string {
	t.Helper()
	rs, err := d.raw.QueryContext(ctxFor(t), "SELECT * FROM "+table)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]map[string]string{}
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		var id int64 = -1
		for i, c := range cols {
			row[strings.ToLower(c)] = cell(vals[i])
			if strings.EqualFold(c, "id") {
				id = asInt(t, vals[i])
			}
		}
		out[id] = row
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func asInt(t *testing.T, v any) int64 {
	t.Helper()
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case []byte:
		var n int64
		if _, err := fmt.Sscan(string(x), &n); err != nil {
			t.Fatalf("id %q: %v", x, err)
		}
		return n
	}
	t.Fatalf("id of type %T", v)
	return 0
}

// value reads one column of one row (nil for NULL), with byte slices as strings.
func (d *db) value(t *testing.T, table, column string, id int64) any {
	t.Helper()
	var v any
	err := d.raw.QueryRowContext(ctxFor(t), "SELECT "+column+" FROM "+table+" WHERE id = "+d.h.Dialect.Placeholder(1), id).Scan(&v)
	if err != nil {
		t.Fatalf("read %s.%s of row %d: %v", table, column, id, err)
	}
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

func ids(rows map[int64]map[string]string) []int64 {
	out := make([]int64, 0, len(rows))
	for id := range rows {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// sameRows fails unless want and got hold the same rows, value for value.
func sameRows(t *testing.T, table string, want, got map[int64]map[string]string) {
	t.Helper()
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("%s: row %d is gone", table, id)
			continue
		}
		for c, wv := range w {
			if g[c] != wv {
				t.Errorf("%s: row %d column %s changed: %s -> %s", table, id, c, clip(wv), clip(g[c]))
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: unexpected row %d", table, id)
		}
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// without returns rows minus the given ids.
func without(rows map[int64]map[string]string, drop ...int64) map[int64]map[string]string {
	out := make(map[int64]map[string]string, len(rows))
	for id, r := range rows {
		out[id] = r
	}
	for _, id := range drop {
		delete(out, id)
	}
	return out
}

func (h Harness) client(t *testing.T, secret string, spec *privacyv1alpha1.DataStoreSpec, opts sqlstore.Options) connector.Client {
	t.Helper()
	c, err := h.tryClient(t, secret, spec, opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (h Harness) tryClient(t *testing.T, secret string, spec *privacyv1alpha1.DataStoreSpec, opts sqlstore.Options) (connector.Client, error) {
	t.Helper()
	p := sqlstore.NewProvider(h.Dialect, opts)
	return p.NewClient(ctxFor(t), connector.Config{
		Name: "DataStore test/db", Spec: spec, Secret: []byte(secret), HashSalt: testSalt,
	})
}

// wantKind fails unless err is a connector error of kind whose message holds no identifier value.
func wantKind(t *testing.T, err error, kind connector.ErrorKind, ids connector.Identifiers) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got none", kind)
	}
	var ce *connector.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want a *connector.Error of kind %s, got %T: %v", kind, err, err)
	}
	if ce.Kind != kind {
		t.Fatalf("want kind %s, got %s: %v", kind, ce.Kind, err)
	}
	noValues(t, err.Error(), ids)
}

func noValues(t *testing.T, msg string, ids connector.Identifiers) {
	t.Helper()
	for name, v := range ids {
		if len(v) >= 3 && strings.Contains(msg, v) {
			t.Fatalf("message leaks identifier %s: %s", name, msg)
		}
	}
}

func counts(locs []connector.LocationCount) map[string]int64 {
	out := map[string]int64{}
	for _, l := range locs {
		out[l.Location] += l.Records
	}
	return out
}

func sameCounts(t *testing.T, what string, want map[string]int64, got []connector.LocationCount) {
	t.Helper()
	g := counts(got)
	if len(g) != len(want) {
		t.Errorf("%s: want %v, got %v", what, want, g)
		return
	}
	for k, v := range want {
		if g[k] != v {
			t.Errorf("%s: want %v, got %v", what, want, g)
			return
		}
	}
}
