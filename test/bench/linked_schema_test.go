package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// The linked modes' schema, the same in PostgreSQL and MariaDB: a shop whose customers are found
// by email and whose orders, order items and logins hang off customers.id through foreign keys,
// so the database refuses any delete out of order. Child ids are integers, as in most shops.
var linkedSchema = []string{
	`CREATE TABLE customers (id VARCHAR(32) NOT NULL PRIMARY KEY, email VARCHAR(255) NOT NULL, name VARCHAR(255))`,
	`CREATE INDEX customers_email ON customers (email)`,
	`CREATE TABLE orders (id BIGINT NOT NULL PRIMARY KEY, customer_id VARCHAR(32) NOT NULL, total INT NOT NULL,
		CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id))`,
	`CREATE INDEX orders_customer_id ON orders (customer_id)`,
	`CREATE TABLE order_item (id BIGINT NOT NULL PRIMARY KEY, order_id BIGINT NOT NULL, sku VARCHAR(32) NOT NULL,
		CONSTRAINT order_item_order_fk FOREIGN KEY (order_id) REFERENCES orders (id))`,
	`CREATE INDEX order_item_order_id ON order_item (order_id)`,
}

// loginSchema is the fourth table of the linked mode. The linked-requests mode has no logins: an
// unmapped table referencing customers would (rightly) block every erasure.
var loginSchema = []string{
	`CREATE TABLE login (id BIGINT NOT NULL PRIMARY KEY, customer_id VARCHAR(32) NOT NULL, at VARCHAR(32) NOT NULL,
		CONSTRAINT login_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id))`,
	`CREATE INDEX login_customer_id ON login (customer_id)`,
}

// shape is how many linked rows one customer has.
type shape struct {
	orders, itemsPerOrder, logins int
}

// rows is the customer's rows in all tables, the customer's own included.
func (s shape) rows() int { return 1 + s.orders*(1+s.itemsPerOrder) + s.logins }

// shapeOf spreads rows over the four tables of the linked mode: a fifth orders, three items per
// order, the rest logins, and the customer row.
func shapeOf(rows int) shape {
	orders := rows / 5
	return shape{orders: orders, itemsPerOrder: 3, logins: rows - 1 - 4*orders}
}

// requestsShape is one subject of the linked-requests mode: two orders of two items each.
var requestsShape = shape{orders: 2, itemsPerOrder: 2}

// idRange is the ids [lo, hi) a set's rows got in one child table.
type idRange struct{ lo, hi int64 }

// linkedSet is what seedLinked inserted for a set, to count what is left of it.
type linkedSet struct {
	n                     int
	shape                 shape
	orders, items, logins idRange
}

// linkedSeeder hands out child ids, the same in both databases.
type linkedSeeder struct {
	nextOrder, nextItem, nextLogin int64
	sets                           map[string]linkedSet
}

func newLinkedSeeder() *linkedSeeder {
	return &linkedSeeder{nextOrder: 1, nextItem: 1, nextLogin: 1, sets: map[string]linkedSet{}}
}

// table is rows of one table to insert.
type table struct {
	name    string
	columns []string
	rows    [][]any
}

// seedLinked inserts n customers of set, each with sh's rows, into both SQL stores (parents
// first), in batches.
func (ls *linkedSeeder) seedLinked(t *testing.T, ctx context.Context, st *stores, set string, n int, sh shape) {
	t.Helper()
	customers := table{name: "customers", columns: []string{"id", "email", "name"}}
	orders := table{name: "orders", columns: []string{"id", "customer_id", "total"}}
	items := table{name: "order_item", columns: []string{"id", "order_id", "sku"}}
	logins := table{name: "login", columns: []string{"id", "customer_id", "at"}}
	ls2 := linkedSet{n: n, shape: sh}
	ls2.orders.lo, ls2.items.lo, ls2.logins.lo = ls.nextOrder, ls.nextItem, ls.nextLogin
	for i := range n {
		id := subjectID(set, i)
		customers.rows = append(customers.rows, []any{id, id + "@example.com", "Name " + id})
		for range sh.orders {
			order := ls.nextOrder
			ls.nextOrder++
			orders.rows = append(orders.rows, []any{order, id, 100})
			for range sh.itemsPerOrder {
				items.rows = append(items.rows, []any{ls.nextItem, order, "sku-1"})
				ls.nextItem++
			}
		}
		for range sh.logins {
			logins.rows = append(logins.rows, []any{ls.nextLogin, id, "2026-12-01T10:00:00Z"})
			ls.nextLogin++
		}
	}
	ls2.orders.hi, ls2.items.hi, ls2.logins.hi = ls.nextOrder, ls.nextItem, ls.nextLogin
	ls.sets[set] = ls2
	for _, tb := range []table{customers, orders, items, logins} {
		for _, db := range []struct {
			db *sql.DB
			pg bool
		}{{st.pg, true}, {st.my, false}} {
			insertRows(t, ctx, db.db, db.pg, tb)
		}
	}
}

func insertRows(t *testing.T, ctx context.Context, db *sql.DB, pg bool, tb table) {
	t.Helper()
	const batch = 500
	for from := 0; from < len(tb.rows); from += batch {
		var vals []string
		var args []any
		for _, row := range tb.rows[from:min(from+batch, len(tb.rows))] {
			marks := make([]string, len(row))
			for k := range row {
				if pg {
					marks[k] = fmt.Sprintf("$%d", len(args)+k+1)
				} else {
					marks[k] = "?"
				}
			}
			vals = append(vals, "("+strings.Join(marks, ", ")+")")
			args = append(args, row...)
		}
		q := "INSERT INTO " + tb.name + " (" + strings.Join(tb.columns, ", ") + ") VALUES " + strings.Join(vals, ",")
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
}

// linkedCounts are a set's rows left in one store, table by table.
type linkedCounts struct{ customers, orders, items, logins int64 }

func (c linkedCounts) total() int64 { return c.customers + c.orders + c.items + c.logins }

// presentLinked counts what is left of set's rows in db, by customer id and by the child ids it
// was given (an order item keeps no customer id, and its order may be gone).
func (ls *linkedSeeder) presentLinked(t *testing.T, ctx context.Context, db *sql.DB, pg bool, set string) linkedCounts {
	t.Helper()
	s := ls.sets[set]
	mark := func(k int) string {
		if pg {
			return fmt.Sprintf("$%d", k)
		}
		return "?"
	}
	count := func(q string, args ...any) int64 {
		var n int64
		if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	inRange := func(tableName string, r idRange) int64 {
		return count("SELECT COUNT(*) FROM "+tableName+" WHERE id >= "+mark(1)+" AND id < "+mark(2), r.lo, r.hi)
	}
	c := linkedCounts{
		customers: count("SELECT COUNT(*) FROM customers WHERE id LIKE "+mark(1), set+"_______"),
		orders:    inRange("orders", s.orders),
		items:     inRange("order_item", s.items),
	}
	if s.shape.logins > 0 {
		c.logins = inRange("login", s.logins)
	}
	return c
}

// checkLinkedErased fails unless set's rows are gone from both SQL stores and each bystander set
// is whole.
func (ls *linkedSeeder) checkLinkedErased(t *testing.T, ctx context.Context, st *stores, set string, bystanders ...string) {
	t.Helper()
	for _, db := range []struct {
		name string
		db   *sql.DB
		pg   bool
	}{{"postgres", st.pg, true}, {"mariadb", st.my, false}} {
		if c := ls.presentLinked(t, ctx, db.db, db.pg, set); c.total() != 0 {
			t.Fatalf("set %s: rows left in %s after erasure: %+v", set, db.name, c)
		}
		for _, by := range bystanders {
			s := ls.sets[by]
			want := linkedCounts{customers: int64(s.n), orders: s.orders.hi - s.orders.lo, items: s.items.hi - s.items.lo, logins: s.logins.hi - s.logins.lo}
			if got := ls.presentLinked(t, ctx, db.db, db.pg, by); got != want {
				t.Fatalf("bystanders %s lost rows in %s: %+v of %+v", by, db.name, got, want)
			}
		}
	}
}

// linkedTables maps customers -> orders -> order_item (and login) with provides and match, as
// docs/datastores.md describes. customerMatch is how customers are found.
func linkedTables(customerMatch []privacyv1alpha1.ColumnMatch, withLogin bool) []privacyv1alpha1.TableMapping {
	tables := []privacyv1alpha1.TableMapping{
		{Name: "customers", Action: privacyv1alpha1.ActionDelete, Match: customerMatch,
			Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "customerId", Column: "id"}}},
		{Name: "orders", Action: privacyv1alpha1.ActionDelete,
			Match:    []privacyv1alpha1.ColumnMatch{{Column: "customer_id", Identifier: "customerId"}},
			Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "orderId", Column: "id"}}},
		{Name: "order_item", Action: privacyv1alpha1.ActionDelete,
			Match: []privacyv1alpha1.ColumnMatch{{Column: "order_id", Identifier: "orderId"}}},
	}
	if withLogin {
		tables = append(tables, privacyv1alpha1.TableMapping{Name: "login", Action: privacyv1alpha1.ActionDelete,
			Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_id", Identifier: "customerId"}}})
	}
	return tables
}
