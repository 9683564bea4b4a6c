package postgres

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
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
		// A partitioned table is read by its primary key.
		TextKeyTable: []string{
			"CREATE TABLE textkey (id INTEGER, code VARCHAR(16) PRIMARY KEY, email VARCHAR(255), phone VARCHAR(64), notes TEXT) PARTITION BY RANGE (code)",
			"CREATE TABLE textkey_all PARTITION OF textkey DEFAULT",
		},
		TextRangeKey: `"code"`,
		Append:       sqltest.AppendSeen,
	})
}

// A batch statement reads its pages only: the planner serves its ctid range with a TID Range
// Scan, not a scan of the whole table filtered by ctid.
func TestScanBatchReadsItsPagesOnly(t *testing.T) {
	h := harness(t)
	secret := h.NewDatabase(t)
	raw, err := Dialect{}.Open([]byte(secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, stmt := range []string{
		"CREATE TABLE wide (id INTEGER PRIMARY KEY, email TEXT, phone TEXT)",
		"INSERT INTO wide SELECT i, 'user-' || i || '@example.org', '+1 666 ' || lpad(i::text, 7, '0') FROM generate_series(1, 5000) i",
		"ANALYZE wide",
	} {
		if _, err := raw.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	var mu sync.Mutex
	var ranged []string
	opts := sqlstore.Options{ScanBatchRows: 500, OnSpellingSearch: func(query string, _ int) {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(query, "ctid >= $1::tid AND ctid < $2::tid AND") {
			ranged = append(ranged, query)
		}
	}}
	spec := &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypePostgres, Tables: []privacyv1alpha1.TableMapping{{
		Name: "wide", Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}, {Column: "phone", Identifier: "phone"}}}}}
	c, err := NewProvider(opts).NewClient(ctx, connector.Config{Spec: spec, Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := connector.Request{ID: "wide", Identifiers: connector.Identifiers{"email": "user-7@example.org", "phone": "+16660000007"}}
	if v, err := c.Verify(ctx, req); err != nil || v.Remaining != 1 {
		t.Fatalf("Verify: %+v, %v; want the one row", v, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranged) < 2 {
		t.Fatalf("want several batches with both bounds, got %q", ranged)
	}
	for _, query := range []string{ranged[0], ranged[len(ranged)-1]} {
		args := []any{"(1,0)", "(3,0)", "nobody@example.net"}
		if strings.Contains(query, "LIKE") {
			args[2] = "%5550100001%"
		}
		plan := explain(t, ctx, raw, query, args)
		if !strings.Contains(plan, "Tid Range Scan") {
			t.Errorf("the batch statement %s is not a TID range scan:\n%s", query, plan)
		}
	}
}

// explain is PostgreSQL's plan of query, one line per plan node.
func explain(t *testing.T, ctx context.Context, raw *sql.DB, query string, args []any) string {
	t.Helper()
	rows, err := raw.QueryContext(ctx, "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan.String()
}
