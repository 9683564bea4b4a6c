package sqlite

import (
	"testing"

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
