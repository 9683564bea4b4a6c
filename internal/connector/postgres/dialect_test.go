package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var salt = []byte("postgres-test-salt")

func setup(t *testing.T, stmts ...string) (string, *sql.DB) {
	t.Helper()
	dsn := newDatabase(t)
	raw, err := Dialect{}.Open([]byte(dsn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	for _, s := range stmts {
		if _, err := raw.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return dsn, raw
}

func newClient(t *testing.T, dsn string, opts sqlstore.Options, tables ...privacyv1alpha1.TableMapping) connector.Client {
	t.Helper()
	spec := &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypePostgres, Tables: tables}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := NewProvider(opts).NewClient(ctx, connector.Config{Spec: spec, Secret: []byte(dsn), HashSalt: salt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// statementLog keeps the statements a client sends (sqlstore.Options.OnStatement), which its
// pool may send from several goroutines.
type statementLog struct {
	mu         sync.Mutex
	statements []string
}

func (l *statementLog) record(query string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statements = append(l.statements, query)
}

// take returns the statements so far and starts again.
func (l *statementLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.statements
	l.statements = nil
	return out
}

func count(t *testing.T, raw *sql.DB, query string) int {
	t.Helper()
	var n int
	if err := raw.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestPartitionedBatches: ctids repeat across partitions. A batch that picked ctids in one
// partition must not delete the bystanders that share them in another.
func TestPartitionedBatches(t *testing.T) {
	dsn, raw := setup(t,
		"CREATE TABLE events (id int, user_id int, part int) PARTITION BY LIST (part)",
		"CREATE TABLE events_a PARTITION OF events FOR VALUES IN (1)",
		"CREATE TABLE events_b PARTITION OF events FOR VALUES IN (2)",
		"INSERT INTO events_a SELECT g, 42, 1 FROM generate_series(1, 7) g",
		"INSERT INTO events_b SELECT 100 + g, 7, 2 FROM generate_series(1, 7) g",
	)
	if n := count(t, raw, "SELECT count(*) FROM events_a a JOIN events_b b ON a.ctid = b.ctid"); n != 7 {
		t.Fatalf("the test needs colliding ctids, found %d", n)
	}
	c := newClient(t, dsn, sqlstore.Options{BatchSize: 2, MaxAtomicRows: 1}, privacyv1alpha1.TableMapping{
		Name: "events", Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "user_id", Identifier: "userId"}}})
	res, err := c.Erase(context.Background(), connector.Request{Identifiers: connector.Identifiers{"userId": "42"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Erased != 7 {
		t.Errorf("erased %d, want 7", res.Erased)
	}
	if n := count(t, raw, "SELECT count(*) FROM events WHERE user_id = 7"); n != 7 {
		t.Fatalf("bystanders left: %d of 7", n)
	}
	if n := count(t, raw, "SELECT count(*) FROM events WHERE user_id = 42"); n != 0 {
		t.Fatalf("subject rows left: %d", n)
	}
}

// TestTypes covers uuid matching, quoted mixed-case names, deep search of jsonb and the JSON
// form of collected values.
func TestTypes(t *testing.T) {
	const id = "3f2b8c4e-1d2a-4b6c-9e8f-0a1b2c3d4e5f"
	dsn, raw := setup(t,
		`CREATE TABLE "Members" (id uuid PRIMARY KEY, email text, score numeric, joined timestamptz,
			meta jsonb, avatar bytea, active boolean, tags text[])`,
		`INSERT INTO "Members" VALUES
			('`+id+`', 'alice@example.com', 12.50, '2026-01-02T03:04:05Z', '{"backup": "alice@example.com"}', '\xff00', true, '{a,b}'),
			('00000000-0000-0000-0000-000000000007', 'bob@example.com', 1, now(), '{"note": "mentions alice@example.com"}', 'ok', false, '{}')`,
	)
	table := privacyv1alpha1.TableMapping{Name: "Members", Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "id", Identifier: "userId"}}}
	c := newClient(t, dsn, sqlstore.Options{}, table)
	ctx := context.Background()

	for _, v := range []string{strings.ToUpper(id), "{" + id + "}", strings.ReplaceAll(id, "-", ""), "not-a-uuid", "' OR 1=1 --"} {
		col, err := c.Collect(ctx, connector.Request{Identifiers: connector.Identifiers{"userId": v}})
		if err != nil {
			t.Fatalf("Collect(%q): %v", v, err)
		}
		if len(col.Records) != 0 {
			t.Fatalf("a non-canonical uuid %q matched", v)
		}
	}
	col, err := c.Collect(ctx, connector.Request{Identifiers: connector.Identifiers{"userId": id}})
	if err != nil || len(col.Records) != 1 {
		t.Fatalf("Collect: %v %+v", err, col)
	}
	data := col.Records[0].Data
	if col.Records[0].Location != "Members" || data["id"] != id || data["email"] != "alice@example.com" ||
		data["avatar"] != "/wA=" || data["active"] != true || data["joined"] != "2026-01-02T03:04:05Z" {
		t.Errorf("collected %#v", data)
	}
	if _, err := json.Marshal(col); err != nil {
		t.Fatalf("collection does not encode: %v", err)
	}

	v, err := c.Verify(ctx, connector.Request{Identifiers: connector.Identifiers{"userId": id, "email": "alice@example.com"}, Deep: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"Members": 1, "Members (deep: email)": 1, "Members (deep: meta)": 2}
	got := map[string]int64{}
	for _, l := range v.RemainingLocations {
		got[l.Location] = l.Records
	}
	if len(got) != len(want) || got["Members"] != 1 || got["Members (deep: email)"] != 1 || got["Members (deep: meta)"] != 2 {
		t.Errorf("deep verify: %v, want %v", got, want)
	}

	lower := newClient(t, dsn, sqlstore.Options{}, privacyv1alpha1.TableMapping{Name: "members",
		Action: privacyv1alpha1.ActionDelete, Match: table.Match})
	if _, err := lower.Check(ctx); connector.KindOf(err) != connector.KindMapping || err == nil {
		t.Fatalf("quoted names are case-sensitive: members must not resolve to \"Members\": %v", err)
	}
	if n := count(t, raw, `SELECT count(*) FROM "Members"`); n != 2 {
		t.Fatalf("rows changed: %d", n)
	}
}

// TestColumnLengths: a short varchar cannot take a hash or the marker, whether declared
// directly or through a domain.
func TestColumnLengths(t *testing.T) {
	dsn, _ := setup(t,
		"CREATE DOMAIN short_text AS varchar(9)",
		"CREATE TABLE people (id int PRIMARY KEY, email varchar(63), name short_text, code varchar(64))",
	)
	ctx := context.Background()
	for _, tc := range []struct {
		mask privacyv1alpha1.ColumnMask
		ok   bool
	}{
		{privacyv1alpha1.ColumnMask{Column: "email", Strategy: privacyv1alpha1.MaskHash}, false},
		{privacyv1alpha1.ColumnMask{Column: "code", Strategy: privacyv1alpha1.MaskHash}, true},
		{privacyv1alpha1.ColumnMask{Column: "name", Strategy: privacyv1alpha1.MaskRedact}, false},
		{privacyv1alpha1.ColumnMask{Column: "email", Strategy: privacyv1alpha1.MaskRedact}, true},
	} {
		c := newClient(t, dsn, sqlstore.Options{}, privacyv1alpha1.TableMapping{Name: "people",
			Action: privacyv1alpha1.ActionMask, Mask: []privacyv1alpha1.ColumnMask{tc.mask},
			Match: []privacyv1alpha1.ColumnMatch{{Column: "id", Identifier: "userId"}}})
		_, err := c.Check(ctx)
		if tc.ok && err != nil {
			t.Errorf("%s on %s: %v", tc.mask.Strategy, tc.mask.Column, err)
		}
		if !tc.ok && (connector.KindOf(err) != connector.KindMapping || err == nil || !strings.Contains(err.Error(), "at most")) {
			t.Errorf("%s on %s: want a mapping error about its length, got %v", tc.mask.Strategy, tc.mask.Column, err)
		}
	}
}

func TestHashMatchesGo(t *testing.T) {
	dsn, raw := setup(t, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'Zoë 🙂')")
	c := newClient(t, dsn, sqlstore.Options{}, privacyv1alpha1.TableMapping{Name: "t", Action: privacyv1alpha1.ActionMask,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "id", Identifier: "userId"}},
		Mask:  []privacyv1alpha1.ColumnMask{{Column: "v", Strategy: privacyv1alpha1.MaskHash}}})
	if _, err := c.Erase(context.Background(), connector.Request{Identifiers: connector.Identifiers{"userId": "1"}}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(append([]byte(nil), salt...), "Zoë 🙂"...))
	var got string
	if err := raw.QueryRow("SELECT v FROM t").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash %s, want %s", got, hex.EncodeToString(sum[:]))
	}
}

func TestClassifySQLState(t *testing.T) {
	for code, want := range map[string]connector.ErrorKind{
		"28P01": connector.KindAuth, "28000": connector.KindAuth, "42501": connector.KindAuth,
		"3D000": connector.KindInvalid,
		"42P01": connector.KindMapping, "42703": connector.KindMapping, "23503": connector.KindMapping, "22001": connector.KindMapping,
		"3F000": connector.KindMapping,
		"08006": connector.KindUnavailable, "57P01": connector.KindUnavailable, "53300": connector.KindUnavailable,
		"40001": connector.KindUnavailable, "40P01": connector.KindUnavailable, "55P03": connector.KindUnavailable,
	} {
		if got := classifySQLState(code); got != want {
			t.Errorf("%s: %s, want %s", code, got, want)
		}
	}
}

func TestOpenRefusesBadDSN(t *testing.T) {
	const password = "s3cret-pw"
	for _, dsn := range []string{"", "postgres://u:" + password + "@h:notaport/db", "host=h port=x password=" + password} {
		_, err := Dialect{}.Open([]byte(dsn), nil)
		if connector.KindOf(err) != connector.KindInvalid || err == nil {
			t.Errorf("Open(%q): %v", dsn, err)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

// TestPaddedAndTruncatingTypes: char(n) ignores trailing spaces and name truncates to 63 bytes
// when comparing; the connector must not.
func TestPaddedAndTruncatingTypes(t *testing.T) {
	long := strings.Repeat("a", 63)
	dsn, raw := setup(t,
		"CREATE TABLE codes (id int PRIMARY KEY, code char(8), handle name)",
		"INSERT INTO codes VALUES (1, 'ab', 'x'), (2, 'zz', '"+long+"')",
	)
	c := newClient(t, dsn, sqlstore.Options{}, privacyv1alpha1.TableMapping{Name: "codes", Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "code", Identifier: "code"}, {Column: "handle", Identifier: "handle"}}})
	ctx := context.Background()
	res, err := c.Erase(ctx, connector.Request{Identifiers: connector.Identifiers{"code": "ab ", "handle": long + "bbbb"}})
	if err != nil || res.Erased != 0 {
		t.Fatalf("padding or truncation matched: %v %+v", err, res)
	}
	res, err = c.Erase(ctx, connector.Request{Identifiers: connector.Identifiers{"code": "ab", "handle": long}})
	if err != nil || res.Erased != 2 {
		t.Fatalf("exact values: %v %+v", err, res)
	}
	if n := count(t, raw, "SELECT count(*) FROM codes"); n != 0 {
		t.Fatalf("%d rows left", n)
	}
}
