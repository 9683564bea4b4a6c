package controllers_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/all"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// hostileHandles are derived values that a careless store would treat as patterns or syntax:
// SQL LIKE and Redis glob wildcards, a character class, quotes and a comment, and a 10 KB value.
// (PostgreSQL text cannot hold NUL, so NUL is not among the derived values here.)
var hostileHandles = []string{"*", "%", "_", "?", "[ab]", `o'brien "q" \ ;--`, strings.Repeat("x", 10240)}

// nearMisses are the bystander's: each one a hostile value would match if it were a pattern or
// were cut short.
var nearMisses = []string{"anything", "a", "b", "%x", "_y", "o'brien", "[ab]x", strings.Repeat("x", 10239), strings.Repeat("x", 10241)}

// hostileShop seeds a PostgreSQL shop and a Redis cache with the subject's hostile handles and
// the bystander's near misses; it returns the database, its DSN and the Redis fixture.
func hostileShop(t *testing.T) (*sql.DB, string, *redisFixture) {
	t.Helper()
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
		mustExec(t, db, stmt)
	}
	rf := startRedisFixture(t)
	must(t, rf.rdb.FlushDB(ctx).Err())
	for _, h := range hostileHandles {
		mustExec(t, db, `INSERT INTO alias (customer_id, handle) VALUES (1, $1)`, h)
		mustExec(t, db, `INSERT INTO note (handle) VALUES ($1)`, h)
		must(t, rf.rdb.Set(ctx, "profile:"+h, "jane", 0).Err())
	}
	for _, h := range nearMisses {
		mustExec(t, db, `INSERT INTO alias (customer_id, handle) VALUES (2, $1)`, h)
		mustExec(t, db, `INSERT INTO note (handle) VALUES ($1)`, h)
		must(t, rf.rdb.Set(ctx, "profile:"+h, "bystander", 0).Err())
	}
	return db, dsn, rf
}

func hostileSQLSpec(secretName string) privacyv1alpha1.DataStoreSpec {
	return privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypePostgres,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: secretName, Key: "dsn"}},
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
	}
}

func hostileRedisSpec(secretName string) privacyv1alpha1.DataStoreSpec {
	return privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypeRedis,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: secretName, Key: "url"}},
		Keys:       []privacyv1alpha1.KeyMapping{{Pattern: "profile:{handle}", Action: privacyv1alpha1.KeyActionDelete}},
	}
}

// assertHostileOutcome: every row and key of the subject's hostile handles gone, every near
// miss of the bystander's there.
func assertHostileOutcome(t *testing.T, db *sql.DB, rf *redisFixture) {
	t.Helper()
	ctx := context.Background()
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
		if rf.rdb.Exists(ctx, "profile:"+h).Val() != 0 {
			t.Errorf("redis: the subject's key with a %d-byte hostile handle is left", len(h))
		}
	}
	for _, h := range nearMisses {
		if rf.rdb.Exists(ctx, "profile:"+h).Val() != 1 {
			t.Errorf("redis: the bystander's key with a %d-byte handle was erased", len(h))
		}
	}
	if n := countRows1(t, db, `SELECT COUNT(*) FROM customer WHERE id = 2`); n != 1 {
		t.Error("the bystander's customer row is gone")
	}
}

// Derived values read from the subject's rows select exactly the rows and keys that hold them, in
// SQL and in Redis, however hostile they are: nothing of the bystander's is erased.
func TestLinkedHostileDerivedValuesEraseNothingElse(t *testing.T) {
	db, dsn, rf := hostileShop(t)
	startOperator(t)
	ns := newNamespace(t, nil)
	create(t, connSecret(ns, "shop-conn", map[string]string{"dsn": dsn}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: hostileSQLSpec("shop-conn")})
	create(t, connSecret(ns, "cache-conn", map[string]string{"url": rf.url}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cache"}, Spec: hostileRedisSpec("cache-conn")})
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
	assertHostileOutcome(t, db, rf)
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

// The same hostile values straight through the connectors, in the order the controllers call
// them (derive in SQL, then erase in SQL and Redis with every derived value): the connectors, not
// only the operator around them, keep the values from acting as patterns.
func TestLinkedHostileDerivedValuesThroughTheConnectors(t *testing.T) {
	ctx := context.Background()
	db, dsn, rf := hostileShop(t)
	client := func(typ privacyv1alpha1.StoreType, spec privacyv1alpha1.DataStoreSpec, secret string) connector.Client {
		p, err := connector.ProviderFor(typ)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := p.NewClient(ctx, connector.Config{Name: "DataStore test/" + string(typ), Spec: &spec, Secret: []byte(secret)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	sqlSpec, redisSpec := hostileSQLSpec("x"), hostileRedisSpec("x")
	pg, cache := client(privacyv1alpha1.StoreTypePostgres, sqlSpec, dsn), client(privacyv1alpha1.StoreTypeRedis, redisSpec, rf.url)
	ids := connector.Identifiers{"email": "jane.doe@example.com"}
	d, err := pg.(connector.Deriver).Derive(ctx, connector.Request{ID: "r", Identifiers: ids})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(d.Values["handle"]); got != len(hostileHandles) {
		t.Fatalf("derived %d handles, want %d", got, len(hostileHandles))
	}
	req := connector.Request{ID: "r", Identifiers: ids, Values: d.Values, Shared: d.Shared}
	n := int64(len(hostileHandles))
	if res, err := pg.Erase(ctx, req); err != nil || res.Erased != 1+2*n {
		t.Fatalf("sql erase: %+v, %v (want %d erased)", res, err, 1+2*n)
	}
	if res, err := cache.Erase(ctx, req); err != nil || res.Erased != n {
		t.Fatalf("redis erase: %+v, %v (want %d erased)", res, err, n)
	}
	assertHostileOutcome(t, db, rf)
	for name, cl := range map[string]connector.Client{"sql": pg, "redis": cache} {
		if res, err := cl.Verify(ctx, req); err != nil || res.Remaining != 0 {
			t.Errorf("%s verify: %+v, %v", name, res, err)
		}
	}
}
