package sqltest

import (
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// normalizedSubject is held in the contacts table in every spelling a real database collects.
func normalizedSubject() connector.Identifiers {
	return connector.Identifiers{
		"email":      "customer-1@example.com",
		"phone":      "+15550100001",
		"customerId": "CUST-1",
		"altContact": "Customer-1@example.com",
	}
}

// Subject and bystander rows of the contacts table, by id.
var normalizedSubjectRows = []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}

func (d *db) seedContacts(t *testing.T) {
	t.Helper()
	d.exec(t, "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email VARCHAR(255), phone VARCHAR(64), ext_id VARCHAR(64), alt VARCHAR(255), notes TEXT)")
	d.exec(t, "CREATE INDEX contacts_email ON contacts (email)")
	cols := []string{"id", "email", "phone", "ext_id", "alt", "notes"}
	d.insert(t, "contacts", cols,
		// The subject, however the data spells them.
		[]any{1, "Customer-1@Example.com", nil, nil, nil, nil},
		[]any{2, " customer-1@EXAMPLE.com ", nil, nil, nil, nil},
		[]any{3, "customer-1@example.com", nil, nil, nil, nil},
		[]any{4, nil, "+1 (555) 010-0001", nil, nil, nil},
		[]any{5, nil, "0015550100001", nil, nil, nil},
		[]any{6, nil, "555-010-0001", nil, nil, nil}, // national: the store's defaultRegion is US
		[]any{7, nil, "+1.555.010.0001", nil, nil, nil},
		[]any{8, nil, nil, "CUST-1", nil, nil},
		[]any{9, nil, nil, nil, "CUSTOMER-1@example.com ", nil}, // as: email on a column named alt
		// Bystanders a loose comparison would take for the subject.
		[]any{20, "customer-10@example.com", "+15550100010", nil, nil, "ask CUSTOMER-1@Example.com"},
		[]any{21, "customer-11@example.com", nil, nil, nil, nil},
		[]any{22, "customer-1@example.co", nil, nil, nil, nil},
		[]any{23, nil, "+44 5550100001", nil, nil, nil}, // the same digits in another country
		[]any{24, nil, "+1 555 010 0002", nil, nil, nil},
		[]any{25, nil, nil, "cust-1", nil, nil}, // exact ids stay exact
		[]any{26, nil, "+1 555 010 0001 ext. 7", nil, nil, nil},
	)
}

func contactsSpec(typ privacyv1alpha1.StoreType) *privacyv1alpha1.DataStoreSpec {
	spec := fixtureSpec(typ)
	spec.DefaultRegion = "US"
	spec.Tables = []privacyv1alpha1.TableMapping{
		{Name: "contacts", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{
			{Column: "email", Identifier: "email"},
			{Column: "phone", Identifier: "phone"},
			{Column: "ext_id", Identifier: "customerId"},
			{Column: "alt", Identifier: "altContact", As: privacyv1alpha1.MatchEmail},
		}},
	}
	return spec
}

// testNormalized finds, collects, erases and verifies a subject whose email and phone the
// database holds in other spellings, and leaves the near misses alone.
func (h Harness) testNormalized(t *testing.T) {
	d := h.newDB(t)
	d.seedContacts(t)
	c := h.client(t, d.secret, contactsSpec(h.Dialect.Type()), sqlstore.Options{})
	ctx := ctxFor(t)
	req := connector.Request{ID: "norm", Identifiers: normalizedSubject()}
	want := map[string]int64{"contacts": int64(len(normalizedSubjectRows))}
	before := d.rows(t, "contacts")

	v, err := c.Verify(ctx, req)
	if err != nil {
		t.Fatalf("Verify before: %v", err)
	}
	sameCounts(t, "remaining before erase", want, v.RemainingLocations)

	col, err := c.Collect(ctx, req)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	checkCollected(t, col, map[string][]int64{"contacts": normalizedSubjectRows})

	dry, err := c.Erase(ctx, connector.Request{ID: "norm", Identifiers: normalizedSubject(), DryRun: true})
	if err != nil || dry.Erased != int64(len(normalizedSubjectRows)) {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	res, err := c.Erase(ctx, req)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if res.Erased != int64(len(normalizedSubjectRows)) {
		t.Errorf("Erase: erased %d, want %d", res.Erased, len(normalizedSubjectRows))
	}
	sameRows(t, "contacts", without(before, normalizedSubjectRows...), d.rows(t, "contacts"))

	v, err = c.Verify(ctx, req)
	if err != nil || v.Remaining != 0 {
		t.Fatalf("Verify after erase: %+v, %v", v, err)
	}
	deep, err := c.Verify(ctx, connector.Request{ID: "norm", Identifiers: normalizedSubject(), Deep: true})
	if err != nil {
		t.Fatalf("deep Verify: %v", err)
	}
	// The bystander's note names the subject in capitals: deep verification compares emails in
	// any letter case, so it is a remainder.
	sameCounts(t, "deep remaining", map[string]int64{"contacts (deep: notes)": 1}, deep.RemainingLocations)

	// A variant spelling that comes back is found again.
	d.insert(t, "contacts", []string{"id", "email"}, []any{30, "CUSTOMER-1@EXAMPLE.COM"})
	v, err = c.Verify(ctx, req)
	if err != nil {
		t.Fatalf("Verify after restore: %v", err)
	}
	sameCounts(t, "remaining after restore", map[string]int64{"contacts": 1}, v.RemainingLocations)

	// Opting the columns back to exact comparison finds only the exact spelling.
	exact := contactsSpec(h.Dialect.Type())
	for i := range exact.Tables[0].Match {
		exact.Tables[0].Match[i].As = privacyv1alpha1.MatchExact
	}
	d.insert(t, "contacts", []string{"id", "email"}, []any{31, "customer-1@example.com"})
	ce := h.client(t, d.secret, exact, sqlstore.Options{})
	v, err = ce.Verify(ctx, req)
	if err != nil {
		t.Fatalf("Verify exact: %v", err)
	}
	sameCounts(t, "remaining with exact matching", map[string]int64{"contacts": 1}, v.RemainingLocations)
}

// testNormalizedValues: every value of a multi-valued identifier (a second address, a derived
// one) is found in every spelling, each value's own spellings only.
func (h Harness) testNormalizedValues(t *testing.T) {
	d := h.newDB(t)
	d.seedContacts(t)
	d.insert(t, "contacts", []string{"id", "email"},
		[]any{40, "Second.Address@Example.com"}, []any{41, " second.address@EXAMPLE.COM"},
		[]any{42, "second.address@example.co"}, []any{43, "second.addresss@example.com"})
	c := h.client(t, d.secret, contactsSpec(h.Dialect.Type()), sqlstore.Options{})
	ctx := ctxFor(t)
	req := connector.Request{ID: "values", Identifiers: connector.Identifiers{"email": "customer-1@example.com"},
		Values: connector.Values{"email": {"second.address@example.com"}}}
	subject := []int64{1, 2, 3, 40, 41}
	before := d.rows(t, "contacts")

	v, err := c.Verify(ctx, req)
	if err != nil {
		t.Fatalf("Verify before: %v", err)
	}
	sameCounts(t, "remaining before erase", map[string]int64{"contacts": int64(len(subject))}, v.RemainingLocations)
	res, err := c.Erase(ctx, req)
	if err != nil || res.Erased != int64(len(subject)) {
		t.Fatalf("Erase: %+v, %v; want %d erased", res, err, len(subject))
	}
	sameRows(t, "contacts", without(before, subject...), d.rows(t, "contacts"))
	if v, err = c.Verify(ctx, req); err != nil || v.Remaining != 0 {
		t.Fatalf("Verify after erase: %+v, %v", v, err)
	}
}
