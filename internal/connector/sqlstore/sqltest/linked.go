package sqltest

import (
	"sort"
	"strings"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// RunLinked runs the linked-data suite (derived identifiers, shared rows, rules, erase order)
// against h. enforceKeys turns a database's secret into one whose connections enforce foreign
// keys (SQLite's PRAGMA foreign_keys); nil where they always are.
func RunLinked(t *testing.T, h Harness, enforceKeys func(secret string) string) {
	if enforceKeys == nil {
		enforceKeys = func(s string) string { return s }
	}
	t.Run("WithForeignKeys", func(t *testing.T) { h.testShop(t, true, enforceKeys) })
	t.Run("WithoutForeignKeys", func(t *testing.T) { h.testShop(t, false, enforceKeys) })
	t.Run("UnmappedForeignKey", func(t *testing.T) { h.testUnmappedForeignKey(t, enforceKeys) })
	t.Run("HostileDerivedValues", h.testHostileDerived)
	t.Run("QualifiedNames", func(t *testing.T) { h.testQualifiedNames(t, enforceKeys) })
	t.Run("StatementsPerErase", func(t *testing.T) { h.testStatementsPerErase(t, enforceKeys) })
	t.Run("CountsInFewStatements", h.testCountsInFewStatements)
	t.Run("UniqueColumns", h.testUniqueColumns)
}

func (h Harness) shop(t *testing.T, foreignKeys bool, enforceKeys func(string) string) (*db, connector.Client) {
	t.Helper()
	d := h.newDB(t)
	d.createShop(t, foreignKeys)
	return d, h.client(t, enforceKeys(d.secret), shopSpec(h.Dialect.Type()), sqlstore.Options{})
}

// derive runs Derive as the controllers will: with the Secret's identifiers, once per step.
func derive(t *testing.T, c connector.Client, req connector.Request) connector.Request {
	t.Helper()
	req, _ = deriveWith(t, c, req)
	return req
}

// deriveAndPlan runs Derive as the controllers do for a deletion: counting the dry run too.
func deriveAndPlan(t *testing.T, c connector.Client, req connector.Request) (connector.Request, *connector.DerivedPlan) {
	t.Helper()
	req.Plan = true
	req, plan := deriveWith(t, c, req)
	if plan == nil {
		t.Fatal("Derive counted no plan")
	}
	return req, plan
}

// deriveWith derives and returns the request carrying what was derived, and the plan if asked.
func deriveWith(t *testing.T, c connector.Client, req connector.Request) (connector.Request, *connector.DerivedPlan) {
	t.Helper()
	deriver, ok := c.(connector.Deriver)
	if !ok {
		t.Fatalf("%T does not derive", c)
	}
	got, err := deriver.Derive(ctxFor(t), req)
	if err != nil {
		t.Fatalf("Derive: %v", err)
	}
	req.Plan = false
	req.Values, req.Shared = got.Values, got.Shared
	return req, got.Plan
}

func sortedValues(v connector.Values, name string) string {
	vals := append([]string(nil), v[name]...)
	sort.Strings(vals)
	return strings.Join(vals, ",")
}

func (h Harness) testShop(t *testing.T, foreignKeys bool, enforceKeys func(string) string) {
	d, c := h.shop(t, foreignKeys, enforceKeys)
	before := d.shopSnapshot(t)
	req, derivedPlan := deriveAndPlan(t, c, connector.Request{ID: "r1", Identifiers: connector.Identifiers{"email": shopSubjectEmail}})

	for name, want := range map[string]string{"customerId": "1", "orderId": "10,11,12", "addressId": "1,5"} {
		if got := sortedValues(req.Values, name); got != want {
			t.Errorf("derived %s = %q, want %q", name, got, want)
		}
	}
	if got := sortedValues(req.Shared, "addressId"); got != "2,3" {
		t.Errorf("shared addressId = %q, want 2,3", got)
	}

	plan, err := c.Erase(ctxFor(t), connector.Request{ID: req.ID, Identifiers: req.Identifiers, Values: req.Values, Shared: req.Shared, DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	sameShop(t, before, d.shopSnapshot(t))
	// The dry run counted while deriving is the dry run's, with the values the request erases with.
	if got := derivedPlan.Result; got.Erased != plan.Erased || got.Masked != plan.Masked || got.Shared != plan.Shared || got.Retained != plan.Retained {
		t.Errorf("plan counted while deriving %+v, dry run %+v: want the same", got, plan)
	}
	for _, name := range []string{"customerId", "orderId", "addressId"} {
		if sortedValues(derivedPlan.Values, name) != sortedValues(req.Values, name) || sortedValues(derivedPlan.Shared, name) != sortedValues(req.Shared, name) {
			t.Errorf("the plan counted with other %s values than the request's", name)
		}
	}
	// With foreign keys the erasure is sized by the plan, as the controllers do (no second
	// count); without, it counts for itself: both must change exactly the same rows.
	if foreignKeys {
		planned := plan.Erased + plan.Masked
		req.Planned = &planned
	}
	res, err := c.Erase(ctxFor(t), req)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	// customer 1, orders 3, items 4, cards 2, logins 6, addresses 2, own ticket 1.
	if res.Erased != 19 || res.Masked != 1 || res.Shared != 2 || plan.Erased != 19 || plan.Masked != 1 || plan.Shared != 2 {
		t.Errorf("erase %+v, plan %+v: want 19 erased, 1 masked, 2 shared", res, plan)
	}
	sameCounts(t, "shared", map[string]int64{"address": 2}, res.SharedLocations)

	after := d.shopSnapshot(t)
	want := map[string]map[int64]map[string]string{
		"customer":     without(before["customer"], 1),
		"orders":       without(before["orders"], 10, 11, 12),
		"order_item":   without(before["order_item"], 100, 101, 102, 103),
		"payment_card": without(before["payment_card"], 1, 2),
		"login":        without(before["login"], 1, 2, 3, 4, 5, 6),
		"address":      without(before["address"], 1, 5),
	}
	for table, rows := range want {
		sameRows(t, table, rows, after[table])
	}
	// Bob's ticket keeps everything but the subject's email as its alternative contact.
	tickets := without(before["service_request"], 1)
	bobTicket := map[string]string{}
	for k, v := range tickets[2] {
		bobTicket[k] = v
	}
	bobTicket["alt_email"] = "NULL"
	tickets[2] = bobTicket
	sameRows(t, "service_request", tickets, after["service_request"])

	v, err := c.Verify(ctxFor(t), req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if v.Remaining != 0 || v.Shared != 2 {
		t.Errorf("verify %+v: want nothing remaining, 2 shared", v)
	}
	again, err := c.Erase(ctxFor(t), req)
	if err != nil || again.Erased != 0 || again.Masked != 0 {
		t.Errorf("second erase %+v, %v: want nothing left to do", again, err)
	}

	if foreignKeys {
		return
	}
	// A login restored for the deleted customer is found again through the kept derived values.
	d.insert(t, "login", []string{"id", "customer_id", "ip"}, []any{8, 1, "10.0.0.8"})
	if v, err := c.Verify(ctxFor(t), req); err != nil || v.Remaining != 1 {
		t.Errorf("verify after a restore %+v, %v: want 1 remaining", v, err)
	}
}

func sameShop(t *testing.T, want, got map[string]map[int64]map[string]string) {
	t.Helper()
	for _, table := range shopTables {
		sameRows(t, table, want[table], got[table])
	}
}

func (h Harness) testUnmappedForeignKey(t *testing.T, enforceKeys func(string) string) {
	d, c := h.shop(t, true, enforceKeys)
	d.exec(t, "CREATE TABLE visit (id INTEGER PRIMARY KEY, customer_id INTEGER, page VARCHAR(255),"+
		" CONSTRAINT visit_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customer (id))")
	d.insert(t, "visit", []string{"id", "customer_id", "page"}, []any{1, 1, "/checkout"}, []any{2, 2, "/"})
	before := d.shopSnapshot(t)
	visits := d.rows(t, "visit")

	check, err := c.Check(ctxFor(t))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !hasWarning(check.Warnings, "visit", "visit_customer_id_fkey", "customer") {
		t.Errorf("Check does not warn about the unmapped table visit: %q", check.Warnings)
	}
	if !hasWarning(check.Warnings, "alt_email", "service_request", "no index") {
		t.Errorf("Check does not warn about the unindexed alt_email: %q", check.Warnings)
	}

	req := derive(t, c, connector.Request{ID: "r2", Identifiers: connector.Identifiers{"email": shopSubjectEmail}})
	_, err = c.Erase(ctxFor(t), req)
	wantKind(t, err, connector.KindMapping, req.Identifiers)
	if msg := err.Error(); !strings.Contains(msg, "visit_customer_id_fkey") || !strings.Contains(msg, "table visit") {
		t.Errorf("the error does not name the constraint and the table: %v", err)
	}
	if connector.IsTransient(err) {
		t.Errorf("an unmapped foreign key is retried: %v", err)
	}
	sameShop(t, before, d.shopSnapshot(t))
	sameRows(t, "visit", visits, d.rows(t, "visit"))
}
