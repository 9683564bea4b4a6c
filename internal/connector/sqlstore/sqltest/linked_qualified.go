package sqltest

import (
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// testQualifiedNames: a mapping that names the shop's tables with their default schema
// ("public.customer") meets the catalog's foreign keys, which name them unqualified, so the
// erasure still deletes dependent rows first and does not trip a constraint.
func (h Harness) testQualifiedNames(t *testing.T, enforceKeys func(string) string) {
	reader, ok := h.Dialect.(sqlstore.DefaultSchemaReader)
	if !ok {
		t.Skip("the dialect does not name its default schema")
	}
	d := h.newDB(t)
	d.createShop(t, true)
	schema, err := reader.DefaultSchema(ctxFor(t), d.raw)
	if err != nil || schema == "" {
		t.Fatalf("default schema %q: %v", schema, err)
	}
	spec := shopSpec(h.Dialect.Type())
	for i := range spec.Tables {
		spec.Tables[i].Name = schema + "." + spec.Tables[i].Name
	}
	c := h.client(t, enforceKeys(d.secret), spec, sqlstore.Options{})
	before := d.shopSnapshot(t)
	req := derive(t, c, connector.Request{ID: "r1", Identifiers: connector.Identifiers{"email": shopSubjectEmail}})
	res, err := c.Erase(ctxFor(t), req)
	if err != nil {
		t.Fatalf("Erase with schema-qualified table names: %v", err)
	}
	if res.Erased != 19 || res.Masked != 1 || res.Shared != 2 {
		t.Errorf("erase %+v: want 19 erased, 1 masked, 2 shared", res)
	}
	after := d.shopSnapshot(t)
	sameRows(t, "customer", without(before["customer"], 1), after["customer"])
	sameRows(t, "order_item", without(before["order_item"], 100, 101, 102, 103), after["order_item"])
	v, err := c.Verify(ctxFor(t), req)
	if err != nil || v.Remaining != 0 {
		t.Errorf("verify %+v, %v: want nothing remaining", v, err)
	}
}
