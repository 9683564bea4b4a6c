package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var salt = []byte("mysql-test-salt")

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

func newClient(t *testing.T, dsn string, tables ...privacyv1alpha1.TableMapping) connector.Client {
	t.Helper()
	spec := &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeMySQL, Tables: tables}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := NewProvider(sqlstore.Options{}).NewClient(ctx, connector.Config{Spec: spec, Secret: []byte(dsn), HashSalt: salt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ids(t *testing.T, raw *sql.DB, table string) []string {
	t.Helper()
	rows, err := raw.Query("SELECT CAST(id AS CHAR) FROM " + table + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLatin1Column: a legacy latin1 column compared with utf8mb4 identifiers, including ones it
// cannot represent, matches the email's spellings (never what the collation alone folds) and
// hashes the UTF-8 text.
func TestLatin1Column(t *testing.T) {
	dsn, raw := setup(t,
		"CREATE TABLE legacy (id INT PRIMARY KEY, email VARCHAR(255) CHARACTER SET latin1, name VARCHAR(255) CHARACTER SET latin1, KEY (email))",
		"INSERT INTO legacy VALUES (1, 'zoë@example.com', 'Zoë'), (2, 'ZOË@example.com', 'Upper'), (3, 'zoe@example.com', 'Plain'), (4, 'a?', 'Question'), (5, 'zoë@example.com ', 'Space')",
	)
	c := newClient(t, dsn, privacyv1alpha1.TableMapping{Name: "legacy", Action: privacyv1alpha1.ActionMask,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "EMAIL", Identifier: "email"}},
		Mask:  []privacyv1alpha1.ColumnMask{{Column: "Name", Strategy: privacyv1alpha1.MaskHash}}})
	ctx := context.Background()
	if _, err := c.Check(ctx); err != nil {
		t.Fatalf("Check (column names are case-insensitive in MySQL): %v", err)
	}
	res, err := c.Erase(ctx, connector.Request{Identifiers: connector.Identifiers{"email": "a🙂"}})
	if err != nil || res.Masked != 0 {
		t.Fatalf("an identifier latin1 cannot hold must match nothing (not 'a?'): %v %+v", err, res)
	}
	// Emails compare normalised: the upper-case and space-padded spellings are the subject's,
	// the unaccented one (equal under the column's collation) is not.
	res, err = c.Erase(ctx, connector.Request{Identifiers: connector.Identifiers{"email": "zoë@example.com"}})
	if err != nil || res.Masked != 3 {
		t.Fatalf("Erase: %v %+v", err, res)
	}
	rows, err := raw.Query("SELECT id, name FROM legacy ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	hashed := func(v string) string {
		sum := sha256.Sum256(append(append([]byte(nil), salt...), v...))
		return hex.EncodeToString(sum[:])
	}
	want := map[int]string{1: hashed("Zoë"), 2: hashed("Upper"), 3: "Plain", 4: "Question", 5: hashed("Space")}
	for rows.Next() {
		var id int
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		if want[id] != name {
			t.Errorf("row %d name %q, want %q", id, name, want[id])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestUnsignedAndBinary(t *testing.T) {
	dsn, raw := setup(t,
		"CREATE TABLE big (id BIGINT UNSIGNED PRIMARY KEY, token VARBINARY(32), KEY (token))",
		"INSERT INTO big VALUES (18446744073709551615, 'tok'), (1, 'TOK'), (2, 'tok '), (3, NULL)",
	)
	c := newClient(t, dsn, privacyv1alpha1.TableMapping{Name: "big", Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "id", Identifier: "userId"}, {Column: "token", Identifier: "token"}}})
	ctx := context.Background()
	for _, v := range []string{"-1", "18446744073709551616", "018446744073709551615"} {
		res, err := c.Erase(ctx, connector.Request{Identifiers: connector.Identifiers{"userId": v}})
		if err != nil || res.Erased != 0 {
			t.Fatalf("userId %q: %v %+v", v, err, res)
		}
	}
	res, err := c.Erase(ctx, connector.Request{Identifiers: connector.Identifiers{"userId": "18446744073709551615", "token": "tok"}})
	if err != nil || res.Erased != 1 {
		t.Fatalf("Erase: %v %+v", err, res)
	}
	if got := strings.Join(ids(t, raw, "big"), ","); got != "1,2,3" {
		t.Fatalf("rows left %s, want 1,2,3", got)
	}
}

func TestColumnLengths(t *testing.T) {
	dsn, _ := setup(t, "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(63), name CHAR(9), code CHAR(64))")
	ctx := context.Background()
	for _, tc := range []struct {
		mask privacyv1alpha1.ColumnMask
		ok   bool
	}{
		{privacyv1alpha1.ColumnMask{Column: "email", Strategy: privacyv1alpha1.MaskHash}, false},
		{privacyv1alpha1.ColumnMask{Column: "code", Strategy: privacyv1alpha1.MaskHash}, true},
		{privacyv1alpha1.ColumnMask{Column: "name", Strategy: privacyv1alpha1.MaskRedact}, false},
		{privacyv1alpha1.ColumnMask{Column: "email", Strategy: privacyv1alpha1.MaskRedact}, true},
		{privacyv1alpha1.ColumnMask{Column: "id", Strategy: privacyv1alpha1.MaskRedact}, false},
	} {
		c := newClient(t, dsn, privacyv1alpha1.TableMapping{Name: "people",
			Action: privacyv1alpha1.ActionMask, Mask: []privacyv1alpha1.ColumnMask{tc.mask},
			Match: []privacyv1alpha1.ColumnMatch{{Column: "id", Identifier: "userId"}}})
		_, err := c.Check(ctx)
		if tc.ok && err != nil {
			t.Errorf("%s on %s: %v", tc.mask.Strategy, tc.mask.Column, err)
		}
		if !tc.ok && (connector.KindOf(err) != connector.KindMapping || err == nil) {
			t.Errorf("%s on %s: want a mapping error, got %v", tc.mask.Strategy, tc.mask.Column, err)
		}
	}
}

func TestClassifyNumber(t *testing.T) {
	for n, want := range map[uint16]connector.ErrorKind{
		1045: connector.KindAuth, 1044: connector.KindAuth, 1142: connector.KindAuth,
		1049: connector.KindInvalid,
		1146: connector.KindMapping, 1054: connector.KindMapping, 1451: connector.KindMapping, 1406: connector.KindMapping,
		1205: connector.KindUnavailable, 1213: connector.KindUnavailable, 1040: connector.KindUnavailable, 1053: connector.KindUnavailable,
	} {
		if got := classifyNumber(n); got != want {
			t.Errorf("%d: %s, want %s", n, got, want)
		}
	}
}

func TestOpenForcesSafeSettings(t *testing.T) {
	db, err := Dialect{}.Open([]byte("u:p@tcp(127.0.0.1:1)/db?interpolateParams=true&multiStatements=true&charset=latin1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const password = "s3cret-pw"
	_, err = Dialect{}.Open([]byte("u:"+password+"@tcp(127.0.0.1:1/db"), nil)
	if connector.KindOf(err) != connector.KindInvalid || err == nil || strings.Contains(err.Error(), password) {
		t.Fatalf("malformed DSN: %v", err)
	}
}
