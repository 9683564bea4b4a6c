package sqlite

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// largeRows is the size of the unindexed table: the million.
const largeRows = 1_000_000

// heapBound is what the operator's heap may grow by while it searches, erases and verifies
// in the table. Holding the table's values would take well over 100 MiB (a million rows of
// three strings); the spellings of one subject take bytes.
const heapBound = 48 << 20

// peakHeap samples HeapInuse until stop is closed and returns the highest sample.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// A million-row table with no index on its email and phone columns: every normalised search
// scans it, in the database, and the operator keeps only the subject's spellings. The test
// erases the subject and asserts the operator's peak heap, not the time it takes.
func TestMillionRowsWithoutIndexInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a million-row table")
	}
	if raceEnabled {
		t.Skip("make test runs this test without the race detector (see race_on_test.go)")
	}
	path, raw := setup(t,
		"CREATE TABLE big (id INTEGER PRIMARY KEY, email TEXT, phone TEXT, note TEXT)",
		`INSERT INTO big (id, email, phone, note)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
SELECT i, 'User-' || i || '@Example.com', '+1 666 ' || printf('%07d', i), 'a row of filler text that the deep search reads'
FROM n`,
		// The subject, in four spellings among the million.
		"INSERT INTO big (id, email, phone) VALUES (2000001, ' Customer-1@EXAMPLE.com', NULL), (2000002, 'customer-1@example.com ', NULL), (2000003, NULL, '+1 (555) 010-0001'), (2000004, NULL, '001-555-010-0001')",
	)
	mapping := privacyv1alpha1.TableMapping{Name: "big", Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}, {Column: "phone", Identifier: "phone"}}}
	// Every statement scans the million rows: a store like this needs a connection timeout that
	// allows a full scan.
	c := newUnhurriedClient(t, path, mapping)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	req := connector.Request{ID: "big", Identifiers: connector.Identifiers{"email": "customer-1@example.com", "phone": "+15550100001"}}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	peak := peakHeap(stop)
	var once sync.Once
	var highest uint64
	finish := func() uint64 {
		once.Do(func() { close(stop); highest = <-peak })
		return highest
	}
	defer finish()

	v, err := c.Verify(ctx, req)
	if err != nil || v.Remaining != 4 {
		t.Fatalf("Verify before: %+v, %v; want 4 remaining", v, err)
	}
	col, err := c.Collect(ctx, req)
	if err != nil || len(col.Records) != 4 {
		t.Fatalf("Collect: %v; want 4 records", err)
	}
	res, err := c.Erase(ctx, req)
	if err != nil || res.Erased != 4 {
		t.Fatalf("Erase: %+v, %v; want 4 erased", res, err)
	}
	req.Deep = true
	if v, err := c.Verify(ctx, req); err != nil || v.Remaining != 0 {
		t.Fatalf("deep Verify after erase: %+v, %v", v, err)
	}
	grown := int64(finish()) - int64(base.HeapInuse)
	t.Logf("peak heap in use grew by %d KiB over %d rows", grown>>10, largeRows)
	if grown > heapBound {
		t.Errorf("peak heap grew by %d MiB while scanning %d rows; want at most %d MiB", grown>>20, largeRows, heapBound>>20)
	}
	var left int64
	if err := raw.QueryRow("SELECT COUNT(*) FROM big").Scan(&left); err != nil || left != largeRows {
		t.Fatalf("rows left: %d, %v; want the %d bystanders", left, err, largeRows)
	}
}
