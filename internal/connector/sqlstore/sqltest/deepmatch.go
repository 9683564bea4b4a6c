package sqltest

import (
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// A match column is deep-searched for its own identifier's values only: a bystander whose
// customer id equals one of the subject's order ids is not the subject's data (it would stay
// "remaining" for ever, as the erasure rightly never touches it). Other columns still take every
// value: a note holding the subject's order id is found.
func (h Harness) testDeepMatchColumnsTakeTheirOwnValues(t *testing.T) {
	d := h.newDB(t)
	d.exec(t, "CREATE TABLE events (id INTEGER PRIMARY KEY, customer_id VARCHAR(32), note VARCHAR(64))")
	d.insert(t, "events", []string{"id", "customer_id", "note"},
		[]any{1, "1", "mine"}, []any{2, "11", "someone else's"}, []any{3, "3", "11"})
	spec := &privacyv1alpha1.DataStoreSpec{Type: h.Dialect.Type(), Tables: []privacyv1alpha1.TableMapping{{
		Name: "events", Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_id", Identifier: "customerId"}},
		Action: privacyv1alpha1.ActionDelete}}}
	c := h.client(t, d.secret, spec, sqlstore.Options{})
	req := connector.Request{ID: "deep-own", Values: connector.Values{"customerId": {"1"}, "orderId": {"11"}}}
	res, err := c.Erase(ctxFor(t), req)
	if err != nil || res.Erased != 1 {
		t.Fatalf("erase: %+v, %v", res, err)
	}
	req.Deep = true
	v, err := c.Verify(ctxFor(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if v.Remaining != 1 || len(v.RemainingLocations) != 1 || !strings.Contains(v.RemainingLocations[0].Location, "note") {
		t.Errorf("deep verify: remaining %d at %+v; want only the note holding the order id", v.Remaining, v.RemainingLocations)
	}
	if rows := d.rows(t, "events"); len(rows) != 2 || rows[2]["customer_id"] != `"11"` {
		t.Errorf("rows left: %v", rows)
	}
}
