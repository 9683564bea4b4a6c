package sqltest

import (
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// The linked shop: the portal knows the subject's email only. Everything else hangs off
// customer.id, and the addresses are partly shared:
//   - address 1: billing address of the subject's card 1, nobody else's -> deleted;
//   - address 2: the subject's home, also Bob's home and the billing address of Bob's card -> shared;
//   - address 3: billing address of the subject's card 2, and Bob's order 20 ships there -> shared;
//   - address 4: Carol's only -> bystander;
//   - address 5: where the subject's orders 10 and 12 ship, nobody else -> deleted.
//
// Bob's ticket 2 names the subject as its alternative contact: only alt_email is masked.
const (
	shopSubjectEmail = "alice@shop.example"
	bobEmail         = "bob@shop.example"
)

var shopTables = []string{"service_request", "login", "order_item", "payment_card", "orders", "customer", "address"}

// shopDDL is the schema; with foreign keys it carries named constraints (the same names on every
// dialect, so messages can be checked).
func shopDDL(foreignKeys bool) []string {
	fk := func(name, col, ref string) string {
		if !foreignKeys {
			return ""
		}
		return ", CONSTRAINT " + name + " FOREIGN KEY (" + col + ") REFERENCES " + ref + " (id)"
	}
	return []string{
		"CREATE TABLE address (id INTEGER PRIMARY KEY, street VARCHAR(255), city VARCHAR(255))",
		"CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(255), name VARCHAR(255), address_id INTEGER" +
			fk("customer_address_id_fkey", "address_id", "address") + ")",
		"CREATE INDEX customer_email ON customer (email)",
		"CREATE INDEX customer_address ON customer (address_id)",
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, shipping_address_id INTEGER, total INTEGER" +
			fk("orders_customer_id_fkey", "customer_id", "customer") +
			fk("orders_shipping_address_id_fkey", "shipping_address_id", "address") + ")",
		"CREATE INDEX orders_customer ON orders (customer_id)",
		"CREATE INDEX orders_shipping ON orders (shipping_address_id)",
		"CREATE TABLE order_item (id INTEGER PRIMARY KEY, order_id INTEGER, sku VARCHAR(64)" +
			fk("order_item_order_id_fkey", "order_id", "orders") + ")",
		"CREATE INDEX order_item_order ON order_item (order_id)",
		"CREATE TABLE payment_card (id INTEGER PRIMARY KEY, customer_id INTEGER, billing_address_id INTEGER, last4 VARCHAR(4)" +
			fk("payment_card_customer_id_fkey", "customer_id", "customer") +
			fk("payment_card_billing_address_id_fkey", "billing_address_id", "address") + ")",
		"CREATE INDEX payment_card_customer ON payment_card (customer_id)",
		"CREATE TABLE login (id INTEGER PRIMARY KEY, customer_id INTEGER, ip VARCHAR(64)" +
			fk("login_customer_id_fkey", "customer_id", "customer") + ")",
		"CREATE INDEX login_customer ON login (customer_id)",
		"CREATE TABLE service_request (id INTEGER PRIMARY KEY, customer_id INTEGER, alt_email VARCHAR(255), body TEXT" +
			fk("service_request_customer_id_fkey", "customer_id", "customer") + ")",
		"CREATE INDEX service_request_customer ON service_request (customer_id)",
		// alt_email has no index on purpose: Check must warn.
	}
}

func (d *db) createShop(t *testing.T, foreignKeys bool) {
	t.Helper()
	for _, stmt := range shopDDL(foreignKeys) {
		d.exec(t, stmt)
	}
	d.insert(t, "address", []string{"id", "street", "city"},
		[]any{1, "1 Card Road", "Berlin"}, []any{2, "2 Home Street", "Berlin"}, []any{3, "3 Shared Lane", "Hamburg"},
		[]any{4, "4 Carol Court", "Munich"}, []any{5, "5 Parcel Way", "Cologne"})
	d.insert(t, "customer", []string{"id", "email", "name", "address_id"},
		[]any{1, shopSubjectEmail, "Alice", 2}, []any{2, bobEmail, "Bob", 2}, []any{3, "carol@shop.example", "Carol", 4},
		// Another Alice whose address differs by a letter of the domain: the email compares
		// normalised (another case would be the subject's), so only a near miss is a bystander.
		[]any{4, "alice@shop.exampie", "Other Alice", 4})
	d.insert(t, "orders", []string{"id", "customer_id", "shipping_address_id", "total"},
		[]any{10, 1, 5, 100}, []any{11, 1, 2, 110}, []any{12, 1, 5, 120}, []any{20, 2, 3, 200}, []any{21, 3, 4, 210})
	d.insert(t, "order_item", []string{"id", "order_id", "sku"},
		[]any{100, 10, "A"}, []any{101, 10, "B"}, []any{102, 11, "C"}, []any{103, 12, "D"}, []any{200, 20, "E"}, []any{201, 21, "F"})
	d.insert(t, "payment_card", []string{"id", "customer_id", "billing_address_id", "last4"},
		[]any{1, 1, 1, "1111"}, []any{2, 1, 3, "2222"}, []any{3, 2, 2, "3333"})
	d.insert(t, "login", []string{"id", "customer_id", "ip"},
		[]any{1, 1, "10.0.0.1"}, []any{2, 1, "10.0.0.2"}, []any{3, 1, "10.0.0.3"}, []any{4, 1, "10.0.0.4"},
		[]any{5, 1, "10.0.0.5"}, []any{6, 1, "10.0.0.6"}, []any{7, 2, "10.0.0.7"})
	d.insert(t, "service_request", []string{"id", "customer_id", "alt_email", "body"},
		[]any{1, 1, nil, "my parcel is late"}, []any{2, 2, shopSubjectEmail, "call my partner"},
		[]any{3, 3, bobEmail, "wrong size"})
}

func (d *db) shopSnapshot(t *testing.T) map[string]map[int64]map[string]string {
	t.Helper()
	out := map[string]map[int64]map[string]string{}
	for _, table := range shopTables {
		out[table] = d.rows(t, table)
	}
	return out
}

// shopSpec maps the shop from the email alone.
func shopSpec(typ privacyv1alpha1.StoreType) *privacyv1alpha1.DataStoreSpec {
	m := func(col, id string) []privacyv1alpha1.ColumnMatch {
		return []privacyv1alpha1.ColumnMatch{{Column: col, Identifier: id}}
	}
	p := func(pairs ...string) []privacyv1alpha1.ColumnProvide {
		var out []privacyv1alpha1.ColumnProvide
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, privacyv1alpha1.ColumnProvide{Identifier: pairs[i], Column: pairs[i+1]})
		}
		return out
	}
	del := privacyv1alpha1.ActionDelete
	return &privacyv1alpha1.DataStoreSpec{
		Type:       typ,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "db", Key: "dsn"}},
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "customer", Match: m("email", "email"), Provides: p("customerId", "id", "addressId", "address_id"), Action: del},
			{Name: "orders", Match: m("customer_id", "customerId"), Provides: p("orderId", "id", "addressId", "shipping_address_id"), Action: del},
			{Name: "order_item", Match: m("order_id", "orderId"), Action: del},
			{Name: "payment_card", Match: m("customer_id", "customerId"), Provides: p("addressId", "billing_address_id"), Action: del},
			{Name: "login", Match: m("customer_id", "customerId"), Action: del},
			{Name: "address", Match: m("id", "addressId"), Action: del},
			{Name: "service_request", Match: m("customer_id", "customerId"), Action: del},
			{Name: "service_request", Match: m("alt_email", "email"), Action: privacyv1alpha1.ActionMask,
				Mask: []privacyv1alpha1.ColumnMask{{Column: "alt_email", Strategy: privacyv1alpha1.MaskNullify}}},
		},
	}
}

func hasWarning(warnings []string, parts ...string) bool {
	for _, w := range warnings {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(w, p)
		}
		if all {
			return true
		}
	}
	return false
}
