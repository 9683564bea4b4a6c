// Package discovertest is a shop schema for testing kubectl dsr discover on real databases: a
// customer known by email, orders and their items, payment cards, logins, visits and tickets
// hanging off the customer through foreign keys, addresses the subject shares with another
// customer, a product catalogue, and bystanders. Row values are plain test data.
package discovertest

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// SubjectEmail is the one thing the portal knows about the subject.
const SubjectEmail = "alice@shop.example"

// Tables are the shop's tables, referencing tables first.
var Tables = []string{"service_request", "visit", "login", "order_item", "payment_card", "orders", "customer", "address", "product"}

// DDL creates the shop. With foreignKeys every link is a named foreign key, without them the
// links are only in the column names; visit.customer_id has no index on purpose (discover must
// warn), and neither has service_request.alt_email.
func DDL(foreignKeys bool) []string {
	fk := func(name, col, ref string) string {
		if !foreignKeys {
			return ""
		}
		return ", CONSTRAINT " + name + " FOREIGN KEY (" + col + ") REFERENCES " + ref + " (id)"
	}
	return []string{
		"CREATE TABLE address (id INTEGER PRIMARY KEY, street VARCHAR(255), city VARCHAR(255))",
		"CREATE TABLE product (id INTEGER PRIMARY KEY, title VARCHAR(255) NOT NULL, price INTEGER NOT NULL)",
		"CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(255) NOT NULL, phone VARCHAR(32), name VARCHAR(255), address_id INTEGER" +
			fk("customer_address_id_fkey", "address_id", "address") + ")",
		"CREATE INDEX customer_email ON customer (email)",
		"CREATE INDEX customer_address ON customer (address_id)",
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, shipping_address_id INTEGER, total INTEGER" +
			fk("orders_customer_id_fkey", "customer_id", "customer") +
			fk("orders_shipping_address_id_fkey", "shipping_address_id", "address") + ")",
		"CREATE INDEX orders_customer ON orders (customer_id)",
		"CREATE INDEX orders_shipping ON orders (shipping_address_id)",
		"CREATE TABLE order_item (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, product_id INTEGER NOT NULL, quantity INTEGER" +
			fk("order_item_order_id_fkey", "order_id", "orders") +
			fk("order_item_product_id_fkey", "product_id", "product") + ")",
		"CREATE INDEX order_item_order ON order_item (order_id)",
		"CREATE INDEX order_item_product ON order_item (product_id)",
		"CREATE TABLE payment_card (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, billing_address_id INTEGER, last4 VARCHAR(4)" +
			fk("payment_card_customer_id_fkey", "customer_id", "customer") +
			fk("payment_card_billing_address_id_fkey", "billing_address_id", "address") + ")",
		"CREATE INDEX payment_card_customer ON payment_card (customer_id)",
		"CREATE INDEX payment_card_billing ON payment_card (billing_address_id)",
		"CREATE TABLE login (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, ip VARCHAR(64)" +
			fk("login_customer_id_fkey", "customer_id", "customer") + ")",
		"CREATE INDEX login_customer ON login (customer_id)",
		"CREATE TABLE visit (id INTEGER PRIMARY KEY, customer_id INTEGER, page VARCHAR(255)" +
			fk("visit_customer_id_fkey", "customer_id", "customer") + ")",
		"CREATE TABLE service_request (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, alt_email VARCHAR(255), body TEXT" +
			fk("service_request_customer_id_fkey", "customer_id", "customer") + ")",
		"CREATE INDEX service_request_customer ON service_request (customer_id)",
	}
}

type rows struct {
	table string
	cols  []string
	vals  [][]any
}

// data: alice (1) is the subject; bob (2), carol (3) and another alice at a near-miss domain (4)
// are bystanders.
//   - address 1: billing address of alice's card 1 only -> masked;
//   - address 2: alice's home, also bob's home and his card's billing address -> shared, kept;
//   - address 3: billing address of alice's card 2, and bob's order 20 ships there -> shared;
//   - address 4: carol's -> bystander;
//   - address 5: where alice's orders 10 and 12 ship -> masked.
//
// Bob's ticket 2 names alice as the alternative contact: only alt_email is masked.
var data = []rows{
	{"address", []string{"id", "street", "city"}, [][]any{
		{1, "1 Card Road", "Berlin"}, {2, "2 Home Street", "Berlin"}, {3, "3 Shared Lane", "Hamburg"},
		{4, "4 Carol Court", "Munich"}, {5, "5 Parcel Way", "Cologne"}}},
	{"product", []string{"id", "title", "price"}, [][]any{{1, "Kettle", 30}, {2, "Teapot", 25}, {3, "Mug", 8}}},
	{"customer", []string{"id", "email", "phone", "name", "address_id"}, [][]any{
		{1, SubjectEmail, "+49 30 1234567", "Alice", 2}, {2, "bob@shop.example", "+49 30 7654321", "Bob", 2},
		{3, "carol@shop.example", nil, "Carol", 4}, {4, "alice@shop.exampie", nil, "Other Alice", 4}}},
	{"orders", []string{"id", "customer_id", "shipping_address_id", "total"}, [][]any{
		{10, 1, 5, 100}, {11, 1, 2, 110}, {12, 1, 5, 120}, {20, 2, 3, 200}, {21, 3, 4, 210}}},
	{"order_item", []string{"id", "order_id", "product_id", "quantity"}, [][]any{
		{100, 10, 1, 1}, {101, 10, 2, 1}, {102, 11, 3, 2}, {103, 12, 1, 1}, {200, 20, 1, 1}, {201, 21, 3, 4}}},
	{"payment_card", []string{"id", "customer_id", "billing_address_id", "last4"}, [][]any{
		{1, 1, 1, "1111"}, {2, 1, 3, "2222"}, {3, 2, 2, "3333"}}},
	{"login", []string{"id", "customer_id", "ip"}, [][]any{
		{1, 1, "10.0.0.1"}, {2, 1, "10.0.0.2"}, {3, 1, "10.0.0.3"}, {4, 1, "10.0.0.4"}, {5, 1, "10.0.0.5"},
		{6, 1, "10.0.0.6"}, {7, 2, "10.0.0.7"}}},
	{"visit", []string{"id", "customer_id", "page"}, [][]any{{1, 1, "/checkout"}, {2, 1, "/account"}, {3, 3, "/"}}},
	{"service_request", []string{"id", "customer_id", "alt_email", "body"}, [][]any{
		{1, 1, nil, "my parcel is late"}, {2, 2, SubjectEmail, "call my partner"}, {3, 3, "bob@shop.example", "wrong size"}}},
}

// Create creates and fills the shop. placeholder is the dialect's n-th bound-argument marker.
func Create(ctx context.Context, db *sql.DB, placeholder func(int) string, foreignKeys bool) error {
	for _, stmt := range DDL(foreignKeys) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	for _, r := range data {
		marks := make([]string, len(r.cols))
		for i := range marks {
			marks[i] = placeholder(i + 1)
		}
		stmt := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", r.table, strings.Join(r.cols, ", "), strings.Join(marks, ", "))
		for _, v := range r.vals {
			if _, err := db.ExecContext(ctx, stmt, v...); err != nil {
				return fmt.Errorf("insert into %s: %w", r.table, err)
			}
		}
	}
	return nil
}

// Snapshot is every row of the shop by table and id, each column as text ("NULL" for NULL).
type Snapshot map[string]map[int64]map[string]string

// Take reads every row of the shop.
func Take(ctx context.Context, db *sql.DB) (Snapshot, error) {
	snap := Snapshot{}
	for _, table := range Tables {
		rows, err := takeTable(ctx, db, table)
		if err != nil {
			return nil, err
		}
		snap[table] = rows
	}
	return snap, nil
}

// takeTable reads every row of one table, by id, each column's value as text ("NULL" for null).
func takeTable(ctx context.Context, db *sql.DB, table string) (map[int64]map[string]string, error) {
	rs, err := db.QueryContext(ctx, "SELECT * FROM "+table)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return nil, err
	}
	out := map[int64]map[string]string{}
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := map[string]string{}
		var id int64
		for i, c := range cols {
			row[strings.ToLower(c)] = "NULL"
			if vals[i].Valid {
				row[strings.ToLower(c)] = vals[i].String
			}
		}
		if _, err := fmt.Sscan(row["id"], &id); err != nil {
			return nil, err
		}
		out[id] = row
	}
	return out, rs.Err()
}

// Expected is what the shop must hold once the subject is erased: the subject's own rows gone,
// the addresses only the subject used masked, bob's ticket without alice as its alternative
// contact, and every other row byte for byte as before.
func Expected(before Snapshot) Snapshot {
	gone := map[string][]int64{
		"customer": {1}, "orders": {10, 11, 12}, "order_item": {100, 101, 102, 103}, "payment_card": {1, 2},
		"login": {1, 2, 3, 4, 5, 6}, "visit": {1, 2}, "service_request": {1},
	}
	want := Snapshot{}
	for table, byID := range before {
		want[table] = map[int64]map[string]string{}
		for id, row := range byID {
			cp := map[string]string{}
			for k, v := range row {
				cp[k] = v
			}
			want[table][id] = cp
		}
		for _, id := range gone[table] {
			delete(want[table], id)
		}
	}
	for _, id := range []int64{1, 5} {
		want["address"][id]["street"] = "NULL"
		want["address"][id]["city"] = "NULL"
	}
	want["service_request"][2]["alt_email"] = "NULL"
	return want
}

// Diff lists how got differs from want, by table, id and column (test data only).
func Diff(want, got Snapshot) []string {
	var out []string
	for _, table := range Tables {
		ids := map[int64]bool{}
		for id := range want[table] {
			ids[id] = true
		}
		for id := range got[table] {
			ids[id] = true
		}
		sorted := make([]int64, 0, len(ids))
		for id := range ids {
			sorted = append(sorted, id)
		}
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		for _, id := range sorted {
			w, inWant := want[table][id]
			g, inGot := got[table][id]
			switch {
			case !inWant:
				out = append(out, fmt.Sprintf("%s %d: still there", table, id))
			case !inGot:
				out = append(out, fmt.Sprintf("%s %d: missing", table, id))
			default:
				for col, wv := range w {
					if g[col] != wv {
						out = append(out, fmt.Sprintf("%s %d %s: %q, want %q", table, id, col, g[col], wv))
					}
				}
			}
		}
	}
	return out
}
