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
		Append:     sqltest.AppendBlocked,
	})
}
