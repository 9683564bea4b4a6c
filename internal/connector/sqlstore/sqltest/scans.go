package sqltest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// AppendMode says what an erasure sees of a row appended while its scan runs.
type AppendMode int

const (
	// AppendBlocked: no one can append during an erasure (SQLite's write lock); not tested.
	AppendBlocked AppendMode = iota
	// AppendSeen: every statement reads what is committed (PostgreSQL's READ COMMITTED), so a
	// later batch finds the row and the erasure takes it.
	AppendSeen
	// AppendAfterSnapshot: the erasure reads one snapshot (InnoDB's REPEATABLE READ): the row
	// stays, and the next verification finds it.
	AppendAfterSnapshot
)

// ScanCase is what RunScans needs beyond the Harness.
type ScanCase struct {
	// RangeKey is how a batch statement names its key: "rowid", "ctid", "`id`".
	RangeKey string
	// NoKeyTable are statements creating table nokey (id, email, phone, notes) with no scan key.
	NoKeyTable []string
	// TextKeyTable are statements creating table textkey (id, code, email, phone, notes) whose
	// scan key is its text primary key code; TextRangeKey is how a batch names it.
	TextKeyTable []string
	TextRangeKey string
	Append       AppendMode
}

// scanBatchRows is the batch size of the tests: rows of one table spread over many batches.
const scanBatchRows = 3

// Rows of the scanned table: the subject at its first and last row and in between, near
// misses next to them. The notes are long so that a PostgreSQL page holds a few rows only and
// its ctid ranges are several, too.
var (
	scanSubjectRows = []int64{1, 5, 8, 14, 17, 20}
	scanNote        = strings.Repeat("n", 1500)
)

// scanCode is the text key of a row of table textkey: letter case alternates, so that a
// case-insensitive collation orders the keys otherwise than their bytes.
func scanCode(id int64) string {
	if id%2 == 0 {
		return fmt.Sprintf("k%03d", id)
	}
	return fmt.Sprintf("K%03d", id)
}

func (d *db) seedScanned(t *testing.T, table string) {
	t.Helper()
	cols := []string{"id", "email", "phone", "notes"}
	if table == "textkey" {
		cols = append(cols, "code")
	}
	spelled := map[int64][2]any{
		1:  {"Customer-1@Example.com", nil},
		2:  {"customer-11@example.com", nil},
		3:  {"customer-1@example.co", nil},
		4:  {nil, "+1 555 010 0002"},
		5:  {nil, "+1 (555) 010-0001"},
		6:  {nil, "+44 5550100001"},
		8:  {" customer-1@EXAMPLE.com ", nil},
		14: {"customer-1@example.com", nil},
		17: {nil, "555.010.0001"}, // national: the store's defaultRegion is US
		20: {"CUSTOMER-1@EXAMPLE.COM", nil},
	}
	for id := int64(1); id <= 20; id++ {
		row := []any{id, "filler-" + string(rune('a'+id)) + "@example.org", "+1 666 000 00" + string(rune('0'+id%10)) + "0", scanNote}
		if s, ok := spelled[id]; ok {
			row[1], row[2] = s[0], s[1]
		}
		if table == "textkey" {
			row = append(row, scanCode(id))
		}
		d.insert(t, table, cols, row)
	}
}

func scansSpec(typ privacyv1alpha1.StoreType, table string) *privacyv1alpha1.DataStoreSpec {
	spec := fixtureSpec(typ)
	spec.DefaultRegion = "US"
	spec.Tables = []privacyv1alpha1.TableMapping{{Name: table, Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}, {Column: "phone", Identifier: "phone"}}}}
	return spec
}

func scanRequest() connector.Request {
	return connector.Request{ID: "scan", Identifiers: connector.Identifiers{"email": "customer-1@example.com", "phone": "+15550100001"}}
}

// searchLog records the statements that searched a column of a table, in order.
type searchLog struct {
	mu      sync.Mutex
	prefix  string
	queries []string
	// onSearch, when set, runs before each recorded statement with its number (from 1).
	onSearch func(n int)
}

func (l *searchLog) add(query string, _ int) {
	l.mu.Lock()
	if !strings.HasPrefix(query, l.prefix) {
		l.mu.Unlock()
		return
	}
	l.queries = append(l.queries, query)
	n, hook := len(l.queries), l.onSearch
	l.mu.Unlock()
	if hook != nil {
		hook(n)
	}
}

func (l *searchLog) setHook(hook func(n int)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onSearch = hook
}

func (l *searchLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.queries
	l.queries = nil
	return out
}

// RunScans proves that a normalised column no index serves is read in bounded key-range
// batches that together find every spelling of the subject, and that a table without a key
// is still searched, in one statement, with a warning.
func RunScans(t *testing.T, h Harness, sc ScanCase) {
	t.Run("Batched", func(t *testing.T) {
		h.testBatchedScan(t, "scanned", sc.RangeKey, sc.Append,
			"CREATE TABLE scanned (id INTEGER PRIMARY KEY, email VARCHAR(255), phone VARCHAR(64), notes TEXT)")
	})
	if sc.TextKeyTable != nil {
		t.Run("TextKey", func(t *testing.T) { h.testBatchedScan(t, "textkey", sc.TextRangeKey, sc.Append, sc.TextKeyTable...) })
	}
	t.Run("NoKey", func(t *testing.T) { h.testNoKeyScan(t, sc) })
}

func (h Harness) testBatchedScan(t *testing.T, table, rangeKey string, appendMode AppendMode, create ...string) {
	d := h.newDB(t)
	for _, stmt := range create {
		d.exec(t, stmt)
	}
	d.seedScanned(t, table)
	q := h.Dialect.QuoteIdent
	log := &searchLog{prefix: "SELECT " + q("email") + " FROM " + q(table) + " WHERE "}
	c := h.client(t, d.secret, scansSpec(h.Dialect.Type(), table),
		sqlstore.Options{ScanBatchRows: scanBatchRows, OnSpellingSearch: log.add})
	ctx := ctxFor(t)

	res, err := c.Check(ctx)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, w := range res.Warnings {
		if strings.Contains(w, "in one statement") {
			t.Errorf("Check: the table has a scan key, yet: %q", w)
		}
	}

	v, err := c.Verify(ctx, scanRequest())
	if err != nil {
		t.Fatalf("Verify before: %v", err)
	}
	sameCounts(t, "remaining before erase", map[string]int64{table: int64(len(scanSubjectRows))}, v.RemainingLocations)
	searches := log.take()
	if len(searches) < 3 {
		t.Fatalf("the email column was searched in %d statements, want a batch of %d rows each:\n%s",
			len(searches), scanBatchRows, strings.Join(searches, "\n"))
	}
	for _, s := range searches {
		if !strings.Contains(s, rangeKey) {
			t.Errorf("a search statement names no %s range: %s", rangeKey, s)
		}
	}
	if first, last := searches[0], searches[len(searches)-1]; first == last || strings.Count(last, rangeKey) != 1 {
		t.Errorf("want the first batch bounded above and the last one unbounded above:\nfirst: %s\nlast: %s", first, last)
	}

	col, err := c.Collect(ctx, scanRequest())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	checkCollected(t, col, map[string][]int64{table: scanSubjectRows})

	// A row in a new spelling appended while the erasure scans, after its first batch.
	const appended = 100
	log.take()
	log.setHook(func(n int) {
		if n == 2 && appendMode != AppendBlocked {
			cols, row := []string{"id", "email", "notes"}, []any{appended, "  customer-1@Example.COM", scanNote}
			if table == "textkey" {
				cols, row = append(cols, "code"), append(row, "z999")
			}
			d.insert(t, table, cols, row)
		}
	})
	before := d.rows(t, table)
	erased, err := c.Erase(ctx, scanRequest())
	log.setHook(nil)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	want := int64(len(scanSubjectRows))
	after := without(before, scanSubjectRows...)
	switch appendMode {
	case AppendSeen:
		want++
	case AppendAfterSnapshot:
		after[appended] = d.rows(t, table)[appended]
		if after[appended] == nil {
			t.Fatalf("the row appended during the erasure is gone, though its snapshot could not see it")
		}
	}
	if erased.Erased != want {
		t.Errorf("Erase: erased %d, want %d", erased.Erased, want)
	}
	// The near misses, and every other row, byte for byte as they were.
	sameRows(t, table, after, d.rows(t, table))

	v, err = c.Verify(ctx, scanRequest())
	if err != nil {
		t.Fatalf("Verify after erase: %v", err)
	}
	if wantLeft := int64(len(after) - len(without(before, scanSubjectRows...))); v.Remaining != wantLeft {
		t.Errorf("Verify after erase: %d remaining, want %d", v.Remaining, wantLeft)
	}
}

func (h Harness) testNoKeyScan(t *testing.T, sc ScanCase) {
	d := h.newDB(t)
	for _, stmt := range sc.NoKeyTable {
		d.exec(t, stmt)
	}
	d.seedScanned(t, "nokey")
	q := h.Dialect.QuoteIdent
	log := &searchLog{prefix: "SELECT " + q("email") + " FROM " + q("nokey") + " WHERE "}
	c := h.client(t, d.secret, scansSpec(h.Dialect.Type(), "nokey"),
		sqlstore.Options{ScanBatchRows: scanBatchRows, OnSpellingSearch: log.add})
	ctx := ctxFor(t)

	res, err := c.Check(ctx)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	warned := map[string]bool{}
	for _, w := range res.Warnings {
		for _, column := range []string{"email", "phone"} {
			if strings.Contains(w, "column "+column+" of table nokey is searched in one statement") {
				warned[column] = true
				if !strings.Contains(w, "primary key") {
					t.Errorf("the warning names no key to create: %q", w)
				}
			}
		}
		if strings.Contains(w, "column email of table nokey is searched") && !strings.Contains(w, "INDEX") {
			t.Errorf("the warning names no index to create for email: %q", w)
		}
	}
	if !warned["email"] || !warned["phone"] {
		t.Errorf("Check: want a warning that email and phone of nokey are read in one statement, got %q", res.Warnings)
	}

	before := d.rows(t, "nokey")
	erased, err := c.Erase(ctx, scanRequest())
	if err != nil || erased.Erased != int64(len(scanSubjectRows)) {
		t.Fatalf("Erase: %+v, %v; want %d erased", erased, err, len(scanSubjectRows))
	}
	sameRows(t, "nokey", without(before, scanSubjectRows...), d.rows(t, "nokey"))
	searches := log.take()
	if len(searches) != 1 || strings.Contains(searches[0], sc.RangeKey) {
		t.Errorf("want one search of email over the whole table, got:\n%s", strings.Join(searches, "\n"))
	}
	if v, err := c.Verify(ctx, scanRequest()); err != nil || v.Remaining != 0 {
		t.Errorf("Verify after erase: %+v, %v", v, err)
	}
}
