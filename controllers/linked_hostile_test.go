package controllers_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// hostileHandles are derived values that a careless store would treat as patterns or syntax:
// SQL LIKE and Redis glob wildcards, a character class, quotes and a comment, and a 10 KB value.
// (PostgreSQL text cannot hold NUL, so NUL is not among the derived values here.)
var hostileHandles = []string{"*", "%", "_", "?", "[ab]", `o'brien "q" \ ;--`, strings.Repeat("x", 10240)}

// nearMisses are the bystander's: each one a hostile value would match if it were a pattern or
// were cut short.
var nearMisses = []string{"anything", "a", "b", "%x", "_y", "o'brien", "[ab]x", strings.Repeat("x", 10239), strings.Repeat("x", 10241)}

// Derived values read from the subject's rows select exactly the rows and keys that hold them, in
// SQL and in Redis, however hostile they are: nothing of the bystander's is erased.
func TestLinkedHostileDerivedValuesEraseNothingElse(t *testing.T) {
	ctx := context.Background()
	dsn, err := teststore.SharedPostgres(t).CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	db := openPG(t, dsn)
	for _, stmt := range []string{
		`CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT NOT NULL)`,
		`CREATE TABLE alias (id SERIAL PRIMARY KEY, customer_id INTEGER NOT NULL, handle TEXT NOT NULL)`,
		`CREATE TABLE note (id SERIAL PRIMARY KEY, handle TEXT NOT NULL)`,
		`INSERT INTO customer VALUES (1, 'jane.doe@example.com'), (2, 'bystander@example.com')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	rf := startRedisFixture(t)
	rdb := rf.rdb
	must(t, rdb.FlushDB(ctx).Err())
	for _, h := range hostileHandles {
		mustExec(t, db, `INSERT INTO alias (customer_id, handle) VALUES (1, $1)`, h)
		mustExec(t, db, `INSERT INTO note (handle) VALUES ($1)`, h)
		must(t, rdb.Set(ctx, "profile:"+h, "jane", 0).Err())
	}
	for _, h := range nearMisses {
		mustExec(t, db, `INSERT INTO alias (customer_id, handle) VALUES (2, $1)`, h)
		mustExec(t, db, `INSERT INTO note (handle) VALUES ($1)`, h)
		must(t, rdb.Set(ctx, "profile:"+h, "bystander", 0).Err())
	}

	startOperator(t)
	ns := newNamespace(t, nil)
	create(t, connSecret(ns, "shop-conn", map[string]string{"dsn": dsn}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypePostgres,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "shop-conn", Key: "dsn"}},
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "customer", Action: privacyv1alpha1.ActionDelete,
				Match:    []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}},
				Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "customerId", Column: "id"}}},
			{Name: "alias", Action: privacyv1alpha1.ActionDelete,
				Match:    []privacyv1alpha1.ColumnMatch{{Column: "customer_id", Identifier: "customerId"}},
				Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "handle", Column: "handle"}}},
			{Name: "note", Action: privacyv1alpha1.ActionDelete,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "handle", Identifier: "handle"}}},
		},
	}})
	create(t, connSecret(ns, "cache-conn", map[string]string{"url": rf.url}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cache"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypeRedis,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "cache-conn", Key: "url"}},
		Keys:       []privacyv1alpha1.KeyMapping{{Pattern: "profile:{handle}", Action: privacyv1alpha1.KeyActionDelete}},
	}})
	create(t, secret(ns, "jane", map[string]string{"email": "jane.doe@example.com"}))
	create(t, deletionRequest(ns, "erase-jane", "jane"))

	dr := waitDR(t, ns, "erase-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	n := int64(len(hostileHandles))
	if st := storeStatus(t, dr, "shop"); st.Erased != 1+2*n || st.Remaining != 0 {
		t.Errorf("shop: erased %d, want %d; remaining %d", st.Erased, 1+2*n, st.Remaining)
	}
	if st := storeStatus(t, dr, "cache"); st.Erased != n || st.Remaining != 0 {
		t.Errorf("cache: erased %d, want %d; remaining %d", st.Erased, n, st.Remaining)
	}
	for _, table := range []string{"alias", "note"} {
		for _, h := range hostileHandles {
			if got := countRows1(t, db, `SELECT COUNT(*) FROM `+table+` WHERE handle = $1`, h); got != 0 {
				t.Errorf("%s: the subject's row with a %d-byte hostile handle is left", table, len(h))
			}
		}
		for _, h := range nearMisses {
			if got := countRows1(t, db, `SELECT COUNT(*) FROM `+table+` WHERE handle = $1`, h); got != 1 {
				t.Errorf("%s: the bystander's row with a %d-byte handle was erased", table, len(h))
			}
		}
	}
	for _, h := range hostileHandles {
		if rdb.Exists(ctx, "profile:"+h).Val() != 0 {
			t.Errorf("redis: the subject's key with a %d-byte hostile handle is left", len(h))
		}
	}
	for _, h := range nearMisses {
		if rdb.Exists(ctx, "profile:"+h).Val() != 1 {
			t.Errorf("redis: the bystander's key with a %d-byte handle was erased", len(h))
		}
	}
	if st := storeStatus(t, dr, "shop"); len(st.Derived) != 2 || st.Derived[1].Identifier != "handle" || st.Derived[1].Values != int32(n) {
		t.Errorf("shop derived %+v", st.Derived)
	}
}

func openPG(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, stmt string, args ...any) {
	t.Helper()
	if _, err := db.Exec(stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func countRows1(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
