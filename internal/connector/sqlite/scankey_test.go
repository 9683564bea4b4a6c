package sqlite

import (
	"context"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore/sqltest"
)

// An erasure holds SQLite's write lock, so no row can be appended while it scans.
func TestScans(t *testing.T) {
	sqltest.RunScans(t, harness(), sqltest.ScanCase{
		RangeKey: "rowid",
		// Its primary key has two columns: no rowid, no single-column key.
		NoKeyTable: []string{"CREATE TABLE nokey (id INTEGER NOT NULL, email TEXT, phone TEXT, notes TEXT, PRIMARY KEY (id, notes)) WITHOUT ROWID"},
		// Stored by its primary key, compared under NOCASE.
		TextKeyTable: []string{"CREATE TABLE textkey (id INTEGER, code TEXT COLLATE NOCASE PRIMARY KEY, email TEXT, phone TEXT, notes TEXT) WITHOUT ROWID"},
		TextRangeKey: `"code"`,
		Append:       sqltest.AppendBlocked,
	})
}

// The rowid under a name no column takes; a WITHOUT ROWID table's single-column primary key;
// nothing for a view, a composite key or a table that does not exist.
func TestScanKey(t *testing.T) {
	_, raw := setup(t,
		"CREATE TABLE plain (email TEXT)",
		"CREATE TABLE shadowed (rowid TEXT, email TEXT)",
		"CREATE TABLE allshadowed (rowid TEXT, _rowid_ TEXT, OID TEXT, email TEXT)",
		"CREATE TABLE keyed (code TEXT PRIMARY KEY, email TEXT) WITHOUT ROWID",
		"CREATE TABLE blobkey (code BLOB PRIMARY KEY, email TEXT) WITHOUT ROWID",
		"CREATE TABLE twokeys (a INTEGER, b INTEGER, email TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID",
		"CREATE VIEW v AS SELECT email FROM plain",
	)
	for table, want := range map[string]string{
		"plain": "rowid", "shadowed": "_rowid_", "allshadowed": "", "keyed": `"code"`,
		"blobkey": "", "twokeys": "", "v": "", "missing": "",
	} {
		key, err := Dialect{}.ScanKey(context.Background(), raw, sqlstore.TableName{Table: table})
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		got := ""
		if key != nil {
			got = key.Column
		}
		if got != want {
			t.Errorf("%s: scan key %q, want %q", table, got, want)
		}
	}
}
