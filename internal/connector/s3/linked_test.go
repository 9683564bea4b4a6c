package s3_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/sqlite"
)

// A customerId derived from a SQL store's rows drives the object keys of an s3 store, as the
// request controllers chain them: Derive on the SQL store, its values passed on as Request.Values.
func TestKeysOfADerivedIdentifier(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "shop.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE customer (id TEXT PRIMARY KEY, email TEXT NOT NULL);
		INSERT INTO customer VALUES ('c-1', 'ada@example.com'), ('c-2', 'ada@example.com'), ('c-9', 'bob@example.com')`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	sqlProvider, err := connector.ProviderFor(privacyv1alpha1.StoreTypeSQLite)
	if err != nil {
		t.Fatal(err)
	}
	shop, err := sqlProvider.NewClient(ctx, connector.Config{Name: "shop", Secret: []byte(path), Spec: &privacyv1alpha1.DataStoreSpec{
		Type: privacyv1alpha1.StoreTypeSQLite,
		Tables: []privacyv1alpha1.TableMapping{{
			Name:     "customer",
			Match:    []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}},
			Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "customerId", Column: "id"}},
			Action:   privacyv1alpha1.ActionDelete,
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	req := connector.Request{ID: "r", Identifiers: connector.Identifiers{"email": "ada@example.com"}}
	derived, err := shop.(connector.Deriver).Derive(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	req.Values = derived.Values

	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, true, false)
	for _, k := range []string{"customers/c-1/invoice.pdf", "customers/c-2/avatar.png", "customers/c-9/invoice.pdf", "customers/c-10/x"} {
		put(t, mc, b, k, "x")
	}
	uploads := newClient(t, srv, del(b, "customers/{customerId}/"))
	if res := mustErase(t, uploads, req); res.Erased != 2 {
		t.Fatalf("erased %d, want the 2 objects of c-1 and c-2", res.Erased)
	}
	if got := versions(t, mc, b); !slices.Equal(got, []string{"customers/c-10/x", "customers/c-9/invoice.pdf"}) {
		t.Fatalf("left %q", got)
	}
}
