package postgres

import (
	"context"
	"database/sql"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// TestSweepFindsListedPersonAndErasesLinkedRows: a person erased earlier is back with another
// spelling of their email and a linked order; a sweep in small pages finds only them, and the
// store's own Derive and Erase remove them with their order while bystanders stay.
func TestSweepFindsListedPersonAndErasesLinkedRows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := newDatabase(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	for _, stmt := range []string{
		"CREATE TABLE customer (id bigint PRIMARY KEY, email text)",
		"CREATE INDEX ON customer (email)",
		"CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customer(id))",
		"CREATE TABLE invoice (id bigint PRIMARY KEY, email text)",
		"INSERT INTO customer SELECT g, 'customer-' || g || '@example.com' FROM generate_series(2, 2500) g",
		"INSERT INTO customer VALUES (1, '  Customer-1@Example.COM ')",
		"INSERT INTO orders SELECT g, g FROM generate_series(1, 50) g",
		"INSERT INTO invoice VALUES (1, 'customer-1@example.com'), (2, 'customer-2@example.com')",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	spec := &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypePostgres, Tables: []privacyv1alpha1.TableMapping{
		{Name: "orders", Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_id", Identifier: "customerId"}}, Action: privacyv1alpha1.ActionDelete},
		{Name: "customer", Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}},
			Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "customerId", Column: "id"}}, Action: privacyv1alpha1.ActionDelete},
		{Name: "invoice", Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}, Action: privacyv1alpha1.ActionRetain, RetainReason: "tax law"},
	}}
	cl, err := NewProvider(sqlstore.Options{}).NewClient(ctx, connector.Config{Name: "test", Spec: spec, Secret: []byte(dsn)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close() }()

	h := suppression.KeyedHasher{Key: []byte("0123456789abcdef0123456789abcdef")}
	listed, _ := h.Hash(normalize.Email, "customer-1@example.com")
	set := suppression.NewSet([]suppression.Entry{{Hash: listed, Kind: suppression.KindEmail}})
	match := func(_ string, kind normalize.Kind, v string) bool {
		hash, ok := h.Hash(kind, v)
		return ok && set.Contains(hash, suppression.KindOf(kind))
	}
	var hits []connector.SweepHit
	stats, err := cl.(connector.Sweeper).Sweep(ctx, connector.SweepOptions{Match: match, PageSize: 100},
		func(hit connector.SweepHit) error { hits = append(hits, hit); return nil })
	if err != nil {
		t.Fatal(err)
	}
	// 50 order customer ids, 2500 emails, 2 invoice emails.
	if stats.Scanned != 50+2500+2 {
		t.Fatalf("scanned %d values, want %d", stats.Scanned, 50+2500+2)
	}
	if len(hits) != 2 {
		t.Fatalf("got %d hits, want the customer row and the retained invoice", len(hits))
	}
	var live *connector.SweepHit
	for i := range hits {
		if !hits[i].Retained {
			live = &hits[i]
		}
	}
	if live == nil || live.Location != "customer" || live.Identifier != "email" {
		t.Fatalf("unexpected hits: %+v", hits)
	}
	req := connector.Request{ID: "sweep-1", Values: connector.Values{live.Identifier: {live.Value}}}
	der, err := cl.(connector.Deriver).Derive(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	req.Values.Merge(der.Values)
	res, err := cl.Erase(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Erased != 2 || res.Retained != 1 {
		t.Fatalf("erase: erased %d retained %d, want 2 and 1", res.Erased, res.Retained)
	}
	var customers, orders, invoices int
	_ = db.QueryRow("SELECT count(*) FROM customer").Scan(&customers)
	_ = db.QueryRow("SELECT count(*) FROM orders").Scan(&orders)
	_ = db.QueryRow("SELECT count(*) FROM invoice").Scan(&invoices)
	if customers != 2499 || orders != 49 || invoices != 2 {
		t.Fatalf("after erase: %d customers, %d orders, %d invoices", customers, orders, invoices)
	}
}
