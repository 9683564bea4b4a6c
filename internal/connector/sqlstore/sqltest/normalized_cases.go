package sqltest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
	"github.com/dsr-operator/dsr-operator/internal/normalize/normcases"
)

// The shared normalised-matching cases (internal/normalize/normcases) on every engine: the
// subject stored in every variant spelling in the people table, next to near misses. Run twice:
// with only the tables' plain primary keys (every search scans, and Check says which index to
// create), and after running exactly the statements Check advised (every search is served by
// an index, of the plan the dialect chose).

// peopleRow is one row of the people table; empty strings are NULL.
type peopleRow struct {
	id                       int64
	email, phone, login, alt string
	notes                    string
}

// peopleRows are the subject's rows (subject true) and the bystanders'.
func peopleRows() (subject, bystanders []peopleRow) {
	id := int64(100)
	next := func() int64 { id++; return id }
	subject = append(subject, peopleRow{id: next(), email: normcases.Email})
	for _, v := range normcases.EmailVariants {
		subject = append(subject, peopleRow{id: next(), email: v})
	}
	for _, v := range normcases.IDNVariants {
		subject = append(subject, peopleRow{id: next(), email: v})
	}
	for _, v := range normcases.PhoneFormats {
		subject = append(subject, peopleRow{id: next(), phone: v})
	}
	// login is matched as exact: only the byte-exact address is the subject's there.
	subject = append(subject, peopleRow{id: next(), login: normcases.Email})
	// alt is matched as email on a column with a case-sensitive collation where there is one.
	subject = append(subject, peopleRow{id: next(), alt: " CUSTOMER-1@example.COM"})
	id = 200
	for _, v := range normcases.EmailBystanders {
		bystanders = append(bystanders, peopleRow{id: next(), email: v, alt: v})
	}
	for _, v := range normcases.PhoneBystanders {
		bystanders = append(bystanders, peopleRow{id: next(), phone: v})
	}
	bystanders = append(bystanders,
		peopleRow{id: next(), login: "Customer-1@example.com"},
		peopleRow{id: next(), login: " " + normcases.Email},
		peopleRow{id: next(), email: "someone@example.org", notes: "ask CUSTOMER-1@Example.com"},
	)
	return subject, bystanders
}

func (h Harness) createPeople(t *testing.T, d *db) {
	t.Helper()
	alt := h.CaseSensitiveText
	if alt == "" {
		alt = "VARCHAR(255)"
	}
	d.exec(t, "CREATE TABLE people (id INTEGER PRIMARY KEY, email VARCHAR(255), phone VARCHAR(64), login VARCHAR(255), alt "+alt+", notes TEXT)")
	subject, bystanders := peopleRows()
	for _, r := range append(subject, bystanders...) {
		d.insert(t, "people", []string{"id", "email", "phone", "login", "alt", "notes"},
			[]any{r.id, null(r.email), null(r.phone), null(r.login), null(r.alt), null(r.notes)})
	}
}

func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func peopleSpec(typ privacyv1alpha1.StoreType) *privacyv1alpha1.DataStoreSpec {
	spec := fixtureSpec(typ)
	spec.DefaultRegion = normcases.Region
	spec.Tables = []privacyv1alpha1.TableMapping{
		{Name: "people", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{
			{Column: "email", Identifier: "email"},
			{Column: "phone", Identifier: "phone"},
			{Column: "login", Identifier: "email", As: privacyv1alpha1.MatchExact},
			{Column: "alt", Identifier: "contact", As: privacyv1alpha1.MatchEmail},
		}},
	}
	return spec
}

// peopleRequest is the subject as its identifiers Secret holds them, or (variant) in other
// spellings of the same values, which must find exactly the same rows.
func peopleRequest(variant bool) connector.Request {
	ids := connector.Identifiers{"email": normcases.Email, "phone": normcases.Phone, "contact": normcases.Email}
	if variant {
		ids = connector.Identifiers{"email": " Customer-1@EXAMPLE.com", "phone": "00 1 (555) 010-0001", "contact": "CUSTOMER-1@example.com"}
	}
	return connector.Request{ID: "people", Identifiers: ids, Values: connector.Values{"email": {normcases.IDNEmail}}}
}

// emailWarnings are Check's warnings about email columns no index serves, and the statements
// they advise.
func emailWarnings(t *testing.T, c connector.Client) (warnings, ddl []string) {
	t.Helper()
	res, err := c.Check(ctxFor(t))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, w := range res.Warnings {
		if !strings.Contains(w, "is matched as email") {
			continue
		}
		warnings = append(warnings, w)
		_, stmt, ok := strings.Cut(w, "create one: ")
		if !ok {
			t.Fatalf("warning names no statement: %q", w)
		}
		ddl = append(ddl, stmt)
	}
	return warnings, ddl
}

func (h Harness) testNormalizedCases(t *testing.T) {
	d := h.newDB(t)
	h.createPeople(t, d)
	c := h.client(t, d.secret, peopleSpec(h.Dialect.Type()), sqlstore.Options{})

	warnings, ddl := emailWarnings(t, c)
	// email and alt are matched as email; neither has any index yet.
	if len(warnings) != 2 {
		t.Fatalf("Check: want a warning naming an index for email and alt, got %q", warnings)
	}
	for i, col := range []string{"email", "alt"} {
		if !strings.Contains(warnings[i], "column "+col+" of table people") {
			t.Errorf("warning %d: want column %s, got %q", i, col, warnings[i])
		}
	}
	if h.EmailIndexDDL != "" && ddl[0] != h.EmailIndexDDL {
		t.Errorf("advised index: want %q, got %q", h.EmailIndexDDL, ddl[0])
	}
	t.Run("scanned", func(t *testing.T) { h.runPeopleCases(t, d, nil) })
	t.Run("indexed", func(t *testing.T) {
		ix := h.newDB(t)
		h.createPeople(t, ix)
		h.runPeopleCases(t, ix, ddl)
	})
}

// runPeopleCases runs the advised statements ddl on d, checks that Check advises nothing more
// for email columns, and then proves every case: collect, dry run, erase, verify, deep verify,
// and a variant that comes back.
func (h Harness) runPeopleCases(t *testing.T, d *db, ddl []string) {
	for _, stmt := range ddl {
		d.exec(t, stmt)
	}
	spec := peopleSpec(h.Dialect.Type())
	var searches spellingSearches
	c := h.client(t, d.secret, spec, sqlstore.Options{OnSpellingSearch: searches.add})
	ctx := ctxFor(t)
	if ddl != nil {
		if w, _ := emailWarnings(t, c); len(w) != 0 {
			t.Fatalf("Check after creating the advised indexes still warns: %q", w)
		}
		d.exec(t, fillerRows(2000))
		defer h.checkPlans(t, d, &searches)
	}
	subject, _ := peopleRows()
	subjectIDs := make([]int64, len(subject))
	for i, r := range subject {
		subjectIDs[i] = r.id
	}
	want := map[string]int64{"people": int64(len(subject))}
	before := d.rows(t, "people")

	v, err := c.Verify(ctx, peopleRequest(false))
	if err != nil {
		t.Fatalf("Verify before: %v", err)
	}
	sameCounts(t, "remaining before erase", want, v.RemainingLocations)
	// Given in other spellings, the subject is found in the same rows, except where login,
	// matched as exact, holds the address byte for byte.
	v, err = c.Verify(ctx, peopleRequest(true))
	if err != nil {
		t.Fatalf("Verify before, variant spelling: %v", err)
	}
	sameCounts(t, "remaining before erase, variant spelling", map[string]int64{"people": want["people"] - 1}, v.RemainingLocations)
	col, err := c.Collect(ctx, peopleRequest(false))
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	checkCollected(t, col, map[string][]int64{"people": subjectIDs})

	dry := peopleRequest(false)
	dry.DryRun = true
	if res, err := c.Erase(ctx, dry); err != nil || res.Erased != int64(len(subject)) {
		t.Fatalf("dry run: %+v, %v; want %d", res, err, len(subject))
	}
	res, err := c.Erase(ctx, peopleRequest(false))
	if err != nil || res.Erased != int64(len(subject)) {
		t.Fatalf("Erase: %+v, %v; want %d erased", res, err, len(subject))
	}
	sameRows(t, "people", without(before, subjectIDs...), d.rows(t, "people"))
	if v, err := c.Verify(ctx, peopleRequest(false)); err != nil || v.Remaining != 0 {
		t.Fatalf("Verify after erase: %+v, %v", v, err)
	}

	// Deep verification reports variants in columns the mapping does not match as remaining:
	// the bystander's note, and copies of both addresses in other spellings.
	d.insert(t, "people", []string{"id", "notes"},
		[]any{300, "forwarded: Customer-1@EXAMPLE.com"}, []any{301, "cc ANNA@xn--BCHER-kva.example"})
	deep := peopleRequest(false)
	deep.Deep = true
	v, err = c.Verify(ctx, deep)
	if err != nil {
		t.Fatalf("deep Verify: %v", err)
	}
	// (Deep verification also reports bystanders whose text contains an address, such as
	// xcustomer-1@example.com, in the other columns: it searches for substrings.)
	if got := counts(v.RemainingLocations); got["people (deep: notes)"] != 3 || got["people"] != 0 {
		t.Errorf("deep remaining: want 3 under people (deep: notes) and none matched, got %v", got)
	}

	// Variants that come back are found again, by verify and deep verify.
	d.insert(t, "people", []string{"id", "email", "phone"},
		[]any{310, "  CUSTOMER-1@Example.COM ", nil}, []any{311, nil, "+1 555-010-0001"},
		[]any{312, "ANNA@BÜCHER.example", nil})
	wantBack := int64(3)
	if h.LowerFoldsASCIIOnly {
		wantBack = 2 // lower() leaves Ü: the prefilter misses it (documented)
	}
	v, err = c.Verify(ctx, deep)
	if err != nil {
		t.Fatalf("deep Verify after restore: %v", err)
	}
	if got := counts(v.RemainingLocations)["people"]; got != wantBack {
		t.Errorf("remaining after restore: want %d in people, got %v", wantBack, counts(v.RemainingLocations))
	}
}

// fillerRows is one INSERT of n rows of other people, so that a database's planner prefers an
// index to reading the whole table.
func fillerRows(n int) string {
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("(%d, 'filler-%d@example.org', '+1 666 %07d', 'Filler-%d@example.org')", 1000+i, i, i, i)
	}
	return "INSERT INTO people (id, email, phone, alt) VALUES " + strings.Join(values, ", ")
}

// spellingSearches records the statements that searched normalised columns.
type spellingSearches struct {
	mu      sync.Mutex
	queries map[string]int
	calls   int
}

func (s *spellingSearches) add(query string, args int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queries == nil {
		s.queries = map[string]int{}
	}
	s.queries[query] = args
	s.calls++
}

// count is how many searches ran since the last reset.
func (s *spellingSearches) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *spellingSearches) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = 0
}

// checkPlans proves that the advised index serves every email search: the plan of each names
// the index Check advised for its column (people_email_norm, people_alt_norm).
func (h Harness) checkPlans(t *testing.T, d *db, searches *spellingSearches) {
	t.Helper()
	if h.Explain == nil {
		return
	}
	ctx := ctxFor(t)
	conn, err := d.raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	searches.mu.Lock()
	defer searches.mu.Unlock()
	checked := map[string]bool{}
	for query, n := range searches.queries {
		column := ""
		for _, c := range []string{"email", "alt"} {
			if strings.HasPrefix(query, "SELECT "+h.Dialect.QuoteIdent(c)+" ") {
				column = c
			}
		}
		if column == "" {
			continue // phone searches always scan
		}
		args := make([]any, n)
		for i := range args {
			args[i] = fmt.Sprintf("nobody-%d@example.net", i)
		}
		plan, err := h.Explain(ctx, conn, query, args)
		if err != nil {
			t.Fatalf("explain %q: %v", query, err)
		}
		if index := "people_" + column + "_norm"; !strings.Contains(plan, index) {
			t.Errorf("the search of %s does not use %s:\n%s\nplan:\n%s", column, index, query, plan)
		}
		checked[column] = true
	}
	if !checked["email"] || !checked["alt"] {
		t.Errorf("no search of email and alt was recorded: %v", checked)
	}
}

// ExplainWith runs prefix+query on conn (after the setup statements) and returns every cell of
// its result as text, one row a line: what an Explain of a Harness can return.
func ExplainWith(ctx context.Context, conn *sql.Conn, setup []string, prefix, query string, args []any) (string, error) {
	for _, s := range setup {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return "", err
		}
	}
	rows, err := conn.QueryContext(ctx, prefix+query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for rows.Next() {
		cells := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range cells {
			ptrs[i] = &cells[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		for _, c := range cells {
			if b, ok := c.([]byte); ok {
				c = string(b)
			}
			fmt.Fprintf(&out, "%v\t", c)
		}
		out.WriteString("\n")
	}
	return out.String(), rows.Err()
}
