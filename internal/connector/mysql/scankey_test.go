package mysql

import (
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore/sqltest"
)

// An erasure reads one snapshot (REPEATABLE READ): a row appended while it scans is left for
// the next request, which verification reports.
func TestScans(t *testing.T) {
	sqltest.RunScans(t, harness(t), sqltest.ScanCase{
		RangeKey:   "`id`",
		NoKeyTable: []string{"CREATE TABLE nokey (id INTEGER, email VARCHAR(255), phone VARCHAR(64), notes TEXT)"},
		// Under the database's case-insensitive collation.
		TextKeyTable: []string{"CREATE TABLE textkey (id INTEGER, code VARCHAR(16) PRIMARY KEY, email VARCHAR(255), phone VARCHAR(64), notes TEXT)"},
		TextRangeKey: "`code`",
		Append:       sqltest.AppendAfterSnapshot,
	})
}
