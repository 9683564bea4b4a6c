package postgres

import (
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore/sqltest"
)

// An erasure reads committed rows statement by statement (READ COMMITTED), so a row appended
// at the end of the table while it scans is found by a later batch.
func TestScans(t *testing.T) {
	sqltest.RunScans(t, harness(t), sqltest.ScanCase{
		RangeKey: "ctid",
		// A partitioned table has no pages of its own, and this one no primary key.
		NoKeyTable: []string{
			"CREATE TABLE nokey (id INTEGER, email VARCHAR(255), phone VARCHAR(64), notes TEXT) PARTITION BY RANGE (id)",
			"CREATE TABLE nokey_all PARTITION OF nokey FOR VALUES FROM (0) TO (1000)",
		},
		Append: sqltest.AppendSeen,
	})
}
