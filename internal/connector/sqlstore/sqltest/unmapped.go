package sqltest

import (
	"fmt"
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// RunUnmapped runs the suite of deep verification of the whole database
// (spec.verification.deepScope: database) and of Check's index warnings on the linked shop
// against h.
func RunUnmapped(t *testing.T, h Harness) {
	t.Run("DatabaseScope", h.testUnmappedFindings)
	t.Run("MappedScope", h.testMappedScopeSearchesNoFurther)
	t.Run("ManyValues", h.testUnmappedManyValues)
	t.Run("BrokenView", h.testUnmappedBrokenView)
	t.Run("Cap", h.testUnmappedCap)
	t.Run("IndexWarnings", h.testIndexWarnings)
	t.Run("MatchColumnsTakeTheirOwnValues", h.testDeepMatchColumnsTakeTheirOwnValues)
	if h.NewSchema != nil {
		t.Run("SchemaTheMappingNames", h.testUnmappedInMappedSchema)
	}
}

// unmappedShop is the linked shop plus copies of the subject's data in tables the mapping does
// not cover: an audit log holding their email (once in another letter case), a legacy order
// table referring to their customer id in a text column, and a view over the audit log.
// Bystanders' copies sit next to them.
func (h Harness) unmappedShop(t *testing.T, scope privacyv1alpha1.DeepScope, opts sqlstore.Options) (*db, connector.Client) {
	t.Helper()
	d := h.newDB(t)
	d.createShop(t, false)
	d.exec(t, "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, action VARCHAR(64), payload TEXT)")
	d.insert(t, "audit_log", []string{"id", "action", "payload"},
		[]any{1, "login", `{"user": "` + strings.ToUpper(shopSubjectEmail[:1]) + shopSubjectEmail[1:] + `", "ok": true}`},
		[]any{2, "login", `{"user": "` + bobEmail + `", "ok": true}`},
		[]any{3, "export", "sent the invoice to " + shopSubjectEmail},
		// The other Alice, whose address differs by one letter: not the subject's.
		[]any{4, "login", `{"user": "alice@shop.exampie"}`},
		[]any{5, "purge", nil})
	d.exec(t, "CREATE TABLE legacy_orders (id INTEGER PRIMARY KEY, cust_ref VARCHAR(32), channel VARCHAR(32))")
	d.insert(t, "legacy_orders", []string{"id", "cust_ref", "channel"},
		[]any{1, "1", "phone"}, []any{2, "2", "web"}, []any{3, "1", "web"}, []any{4, "4", "phone"}, []any{5, "11x", "web"})
	d.exec(t, "CREATE VIEW recent_audit AS SELECT id, payload FROM audit_log WHERE id <= 2")
	spec := shopSpec(h.Dialect.Type())
	spec.Verification = &privacyv1alpha1.DataStoreVerification{DeepScope: scope}
	return d, h.client(t, d.secret, spec, opts)
}

// unmappedLocation is how findings name a table's column: PostgreSQL qualifies every table with
// its schema, the others name the default database's tables as the mapping does.
func (h Harness) unmappedLocation(table, column string) string {
	if h.Dialect.Type() == privacyv1alpha1.StoreTypePostgres {
		return "public." + table + "." + column
	}
	return table + "." + column
}

func (h Harness) testUnmappedFindings(t *testing.T) {
	d, c := h.unmappedShop(t, privacyv1alpha1.DeepScopeDatabase, sqlstore.Options{})
	audit, legacy := d.rows(t, "audit_log"), d.rows(t, "legacy_orders")
	req := derive(t, c, connector.Request{ID: "u1", Identifiers: connector.Identifiers{"email": shopSubjectEmail}})
	req.Deep = true
	want := map[string]int64{
		h.unmappedLocation("audit_log", "payload"):      2,
		h.unmappedLocation("recent_audit", "payload"):   1,
		h.unmappedLocation("legacy_orders", "cust_ref"): 2,
	}

	before, err := c.Verify(ctxFor(t), req)
	if err != nil {
		t.Fatalf("deep Verify before the erasure: %v", err)
	}
	if before.Remaining == 0 {
		t.Errorf("deep Verify before the erasure finds nothing remaining: %+v", before)
	}
	sameCounts(t, "unmapped before the erasure", want, before.UnmappedLocations)

	if _, err := c.Erase(ctxFor(t), req); err != nil {
		t.Fatalf("Erase: %v", err)
	}
	after, err := c.Verify(ctxFor(t), req)
	if err != nil {
		t.Fatalf("deep Verify after the erasure: %v", err)
	}
	if after.Remaining != 0 || len(after.RemainingLocations) != 0 {
		t.Errorf("unmapped copies count as remaining: %+v", after)
	}
	sameCounts(t, "unmapped after the erasure", want, after.UnmappedLocations)
	if after.Unmapped != 5 {
		t.Errorf("unmapped total %d, want 5", after.Unmapped)
	}
	for _, loc := range after.UnmappedLocations {
		noValues(t, loc.Location, req.Identifiers)
		if strings.Contains(loc.Location, "@") {
			t.Errorf("a location holds a value: %q", loc.Location)
		}
	}
	// Deep verification reads; the copies it reports are left for a human to map.
	sameRows(t, "audit_log", audit, d.rows(t, "audit_log"))
	sameRows(t, "legacy_orders", legacy, d.rows(t, "legacy_orders"))

	// Carol has copies nowhere outside the mapping: nothing is reported for her.
	carol := derive(t, c, connector.Request{ID: "u2", Identifiers: connector.Identifiers{"email": "carol@shop.example"}})
	carol.Deep = true
	res, err := c.Verify(ctxFor(t), carol)
	if err != nil {
		t.Fatalf("deep Verify of a bystander: %v", err)
	}
	if res.Unmapped != 0 || len(res.UnmappedLocations) != 0 {
		t.Errorf("unmapped findings for a bystander with no copies: %+v", res.UnmappedLocations)
	}

	// Without Deep the database is not searched.
	req.Deep = false
	if res, err := c.Verify(ctxFor(t), req); err != nil || res.Unmapped != 0 || len(res.UnmappedLocations) != 0 {
		t.Errorf("a verification that is not deep searched outside the mapping: %+v, %v", res, err)
	}
}

// testUnmappedManyValues: a subject with more values than one statement takes (hundreds of
// derived order ids) is searched in several statements, with the same findings.
func (h Harness) testUnmappedManyValues(t *testing.T) {
	_, c := h.unmappedShop(t, privacyv1alpha1.DeepScopeDatabase, sqlstore.Options{})
	req := derive(t, c, connector.Request{ID: "v1", Identifiers: connector.Identifiers{"email": shopSubjectEmail}})
	for i := range 600 {
		req.Values.Add("legacyId", fmt.Sprintf("L-%06d", i))
	}
	req.Deep = true
	res, err := c.Verify(ctxFor(t), req)
	if err != nil {
		t.Fatalf("deep Verify with %d values: %v", req.AllValues().Count(), err)
	}
	sameCounts(t, "unmapped with many values", map[string]int64{
		h.unmappedLocation("audit_log", "payload"):      2,
		h.unmappedLocation("recent_audit", "payload"):   1,
		h.unmappedLocation("legacy_orders", "cust_ref"): 2,
	}, res.UnmappedLocations)
}

// testUnmappedBrokenView: a view that fails when read (a division by zero, a dropped table under
// it) is skipped; the rest of the database is still searched and the verification succeeds.
func (h Harness) testUnmappedBrokenView(t *testing.T) {
	d, c := h.unmappedShop(t, privacyv1alpha1.DeepScopeDatabase, sqlstore.Options{})
	if h.Dialect.Type() == privacyv1alpha1.StoreTypePostgres {
		d.exec(t, "CREATE VIEW broken AS SELECT payload || (1 / (id - id))::text AS payload FROM audit_log")
	} else {
		d.exec(t, "CREATE TABLE gone (payload TEXT)")
		d.exec(t, "CREATE VIEW broken AS SELECT payload FROM gone")
		d.exec(t, "DROP TABLE gone")
	}
	req := derive(t, c, connector.Request{ID: "b1", Identifiers: connector.Identifiers{"email": shopSubjectEmail}})
	req.Deep = true
	res, err := c.Verify(ctxFor(t), req)
	if err != nil {
		t.Fatalf("deep Verify with a broken view: %v", err)
	}
	sameCounts(t, "unmapped next to a broken view", map[string]int64{
		h.unmappedLocation("audit_log", "payload"):      2,
		h.unmappedLocation("recent_audit", "payload"):   1,
		h.unmappedLocation("legacy_orders", "cust_ref"): 2,
	}, res.UnmappedLocations)
}

func (h Harness) testMappedScopeSearchesNoFurther(t *testing.T) {
	for _, scope := range []privacyv1alpha1.DeepScope{"", privacyv1alpha1.DeepScopeMapped} {
		_, c := h.unmappedShop(t, scope, sqlstore.Options{})
		req := derive(t, c, connector.Request{ID: "m1", Identifiers: connector.Identifiers{"email": shopSubjectEmail}})
		if _, err := c.Erase(ctxFor(t), req); err != nil {
			t.Fatalf("Erase: %v", err)
		}
		req.Deep = true
		res, err := c.Verify(ctxFor(t), req)
		if err != nil {
			t.Fatalf("deep Verify: %v", err)
		}
		if res.Unmapped != 0 || len(res.UnmappedLocations) != 0 || res.Remaining != 0 {
			t.Errorf("deepScope %q: %+v: want nothing unmapped and nothing remaining", scope, res)
		}
		check, err := c.Check(ctxFor(t))
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if hasWarning(check.Warnings, "deepScope") {
			t.Errorf("deepScope %q: Check warns about a database search: %q", scope, check.Warnings)
		}
	}
}

func (h Harness) testUnmappedCap(t *testing.T) {
	_, c := h.unmappedShop(t, privacyv1alpha1.DeepScopeDatabase, sqlstore.Options{UnmappedMaxRelations: 1})
	check, err := c.Check(ctxFor(t))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !hasWarning(check.Warnings, "deepScope database", "3 tables and views", "cap of 1", "skips 2") {
		t.Errorf("Check does not warn that the search is capped: %q", check.Warnings)
	}
	req := derive(t, c, connector.Request{ID: "c1", Identifiers: connector.Identifiers{"email": shopSubjectEmail}, Deep: true})
	req.Deep = true
	res, err := c.Verify(ctxFor(t), req)
	if err != nil {
		t.Fatalf("deep Verify: %v", err)
	}
	// The first relation in name order is searched, the others are not.
	sameCounts(t, "unmapped under a cap", map[string]int64{h.unmappedLocation("audit_log", "payload"): 2}, res.UnmappedLocations)

	_, c = h.unmappedShop(t, privacyv1alpha1.DeepScopeDatabase, sqlstore.Options{UnmappedMaxColumns: 2})
	check, err = c.Check(ctxFor(t))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !hasWarning(check.Warnings, "deepScope database", "more than 2 text-like columns", "the cap") {
		t.Errorf("Check does not warn that the column cap is hit: %q", check.Warnings)
	}
	if res, err = c.Verify(ctxFor(t), req); err != nil {
		t.Fatalf("deep Verify: %v", err)
	}
	sameCounts(t, "unmapped under a column cap", map[string]int64{h.unmappedLocation("audit_log", "payload"): 2}, res.UnmappedLocations)
}

// testIndexWarnings: Check warns about a matched and a provided column that no index leads.
func (h Harness) testIndexWarnings(t *testing.T) {
	_, c := h.unmappedShop(t, privacyv1alpha1.DeepScopeMapped, sqlstore.Options{})
	check, err := c.Check(ctxFor(t))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !hasWarning(check.Warnings, "alt_email", "service_request", "has no index") {
		t.Errorf("Check does not warn about the matched column alt_email without an index: %q", check.Warnings)
	}
	if !hasWarning(check.Warnings, "billing_address_id", "payment_card", "no index") {
		t.Errorf("Check does not warn about the provided column billing_address_id without an index: %q", check.Warnings)
	}
	for _, indexed := range []string{"column email ", "column customer_id ", "column order_id ", "column shipping_address_id "} {
		// (Normalised matching warns separately when no expression index serves the column.)
		if hasWarning(check.Warnings, indexed, "has no index") {
			t.Errorf("Check warns about an indexed column (%s): %q", indexed, check.Warnings)
		}
	}
}

// testUnmappedInMappedSchema: a schema the mapping names (a MySQL database besides the DSN's) is
// searched too, and its tables are named with their schema.
func (h Harness) testUnmappedInMappedSchema(t *testing.T) {
	d := h.newDB(t)
	schema := h.NewSchema(t, d.raw)
	for _, table := range []string{"accounts", schema + ".accounts"} {
		d.exec(t, "CREATE TABLE "+table+" (id INTEGER PRIMARY KEY, email VARCHAR(255))")
		d.insert(t, table, []string{"id", "email"}, []any{1, subjectEmail}, []any{2, "bob@example.com"})
	}
	for _, table := range []string{"notes", schema + ".notes"} {
		d.exec(t, "CREATE TABLE "+table+" (id INTEGER PRIMARY KEY, body TEXT)")
		d.insert(t, table, []string{"id", "body"}, []any{1, "write to " + subjectEmail}, []any{2, "write to bob@example.com"})
	}
	spec := fixtureSpec(h.Dialect.Type())
	spec.Tables = nil
	for _, table := range []string{"accounts", schema + ".accounts"} {
		spec.Tables = append(spec.Tables, privacyv1alpha1.TableMapping{Name: table, Action: privacyv1alpha1.ActionDelete,
			Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}})
	}
	spec.Verification = &privacyv1alpha1.DataStoreVerification{DeepScope: privacyv1alpha1.DeepScopeDatabase}
	c := h.client(t, d.secret, spec, sqlstore.Options{})
	req := connector.Request{ID: "s", Identifiers: subject(), Deep: true}
	if _, err := c.Erase(ctxFor(t), req); err != nil {
		t.Fatalf("Erase: %v", err)
	}
	res, err := c.Verify(ctxFor(t), req)
	if err != nil {
		t.Fatalf("deep Verify: %v", err)
	}
	if res.Remaining != 0 {
		t.Errorf("remaining %+v: want none", res.RemainingLocations)
	}
	sameCounts(t, "unmapped in two schemas", map[string]int64{
		h.unmappedLocation("notes", "body"): 1,
		schema + ".notes.body":              1,
	}, res.UnmappedLocations)
}
