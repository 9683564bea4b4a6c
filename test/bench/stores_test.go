package bench

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	goredis "github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/all"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// stores are the three servers the harness started, with a "customers" table in both SQL servers
// (and, in the linked modes, the tables that hang off it).
type stores struct {
	mode                   string
	pgDSN, myDSN, redisURL string
	pg, my                 *sql.DB
	rdb                    *goredis.Client
	// linked hands out and remembers the linked modes' child rows.
	linked *linkedSeeder
}

func (st *stores) close() {
	_ = st.pg.Close()
	_ = st.my.Close()
	_ = st.rdb.Close()
}

// subjectID names subject i of a set ("a", "b") or of its bystanders ("xa", "xb"). The values are
// fictional; they only have to be unique.
func subjectID(set string, i int) string { return fmt.Sprintf("%s%07d", set, i) }

func identifiers(set string, i int) connector.Identifiers {
	id := subjectID(set, i)
	return connector.Identifiers{"email": id + "@example.com", "userId": id}
}

// redisKeys are the keys one subject has in Redis, as the mapping of specs names them.
func redisKeys(id string) []string { return []string{"session:" + id + ":web", "cart:" + id} }

func startStores(t *testing.T, ctx context.Context, mode string) *stores {
	t.Helper()
	pg, err := teststore.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	my, err := teststore.StartMariaDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = my.Close() })
	rd, err := teststore.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rd.Close() })
	st := &stores{mode: mode, redisURL: rd.URL(0), linked: newLinkedSeeder()}
	if st.pgDSN, err = pg.CreateDatabase(ctx, "bench"); err != nil {
		t.Fatal(err)
	}
	if st.myDSN, err = my.CreateDatabase(ctx, "bench"); err != nil {
		t.Fatal(err)
	}
	if st.pg, err = sql.Open("pgx", st.pgDSN); err != nil {
		t.Fatal(err)
	}
	if st.my, err = sql.Open("mysql", st.myDSN); err != nil {
		t.Fatal(err)
	}
	opts, err := goredis.ParseURL(st.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	st.rdb = goredis.NewClient(opts)
	t.Cleanup(st.close)
	schema := []string{
		`CREATE TABLE customers (id VARCHAR(32) NOT NULL, email VARCHAR(255) NOT NULL, name VARCHAR(255))`,
		`CREATE INDEX customers_email ON customers (email)`,
		`CREATE INDEX customers_id ON customers (id)`,
	}
	switch mode {
	case modeLinkedRequests:
		schema = linkedSchema
	case modeLinked:
		schema = append(slices.Clone(linkedSchema), loginSchema...)
	}
	for _, db := range []*sql.DB{st.pg, st.my} {
		for _, s := range schema {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Email matching compares normalised spellings (docs/datastores.md). Its prefilter,
	// LOWER(TRIM(email)) (internal/connector/sqlstore/match.go), is served in PostgreSQL by an
	// expression index on that very expression, as the docs advise. MariaDB 10.11 has no
	// expression indexes: there the prefilter either scans the table or, where the dialect
	// compares under the column's case-insensitive collation (the database's default,
	// utf8mb4_unicode_ci, set by internal/teststore), uses the plain index customers_email.
	if _, err := st.pg.ExecContext(ctx, `CREATE INDEX customers_email_norm ON customers ((LOWER(TRIM(email))))`); err != nil {
		t.Fatal(err)
	}
	return st
}

// seed inserts n subjects of set and n bystanders ("x"+set) into every store, in batches so that
// 10,000 subjects take seconds, not minutes.
func seed(t *testing.T, ctx context.Context, st *stores, set string, n int) {
	t.Helper()
	const batch = 500
	for _, who := range []string{set, "x" + set} {
		if st.mode == modeLinkedRequests {
			st.linked.seedLinked(t, ctx, st, who, n, requestsShape)
			seedRedis(t, ctx, st, who, n)
			continue
		}
		for from := 0; from < n; from += batch {
			to := min(from+batch, n)
			var pgVals, myVals []string
			var args []any
			for i := from; i < to; i++ {
				id := subjectID(who, i)
				k := len(args)
				pgVals = append(pgVals, fmt.Sprintf("($%d, $%d, $%d)", k+1, k+2, k+3))
				myVals = append(myVals, "(?, ?, ?)")
				args = append(args, id, id+"@example.com", "Name "+id)
			}
			if _, err := st.pg.ExecContext(ctx, "INSERT INTO customers (id, email, name) VALUES "+strings.Join(pgVals, ","), args...); err != nil {
				t.Fatal(err)
			}
			if _, err := st.my.ExecContext(ctx, "INSERT INTO customers (id, email, name) VALUES "+strings.Join(myVals, ","), args...); err != nil {
				t.Fatal(err)
			}
		}
		seedRedis(t, ctx, st, who, n)
	}
}

// seedRedis sets the two keys of each of set's n subjects, pipelined.
func seedRedis(t *testing.T, ctx context.Context, st *stores, set string, n int) {
	t.Helper()
	const batch = 500
	for from := 0; from < n; from += batch {
		pipe := st.rdb.Pipeline()
		for i := from; i < min(from+batch, n); i++ {
			id := subjectID(set, i)
			pipe.Set(ctx, redisKeys(id)[0], id+"@example.com", 0)
			pipe.Set(ctx, redisKeys(id)[1], "sku", 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// present counts what is left of set's n subjects in each store: rows in each SQL store, keys in
// Redis.
func present(t *testing.T, ctx context.Context, st *stores, set string, n int) (pg, my, rd int64) {
	t.Helper()
	// Set names never share a prefix with another set's ids ("b" vs "xb"): ids are the set plus
	// seven digits.
	like := set + "_______"
	if err := st.pg.QueryRowContext(ctx, "SELECT COUNT(*) FROM customers WHERE id LIKE $1", like).Scan(&pg); err != nil {
		t.Fatal(err)
	}
	if err := st.my.QueryRowContext(ctx, "SELECT COUNT(*) FROM customers WHERE id LIKE ?", like).Scan(&my); err != nil {
		t.Fatal(err)
	}
	const batch = 1000
	for from := 0; from < n; from += batch {
		var keys []string
		for i := from; i < min(from+batch, n); i++ {
			keys = append(keys, redisKeys(subjectID(set, i))...)
		}
		c, err := st.rdb.Exists(ctx, keys...).Result()
		if err != nil {
			t.Fatal(err)
		}
		rd += c
	}
	return pg, my, rd
}

// checkErased fails the benchmark unless set's subjects are gone from every store and their
// bystanders are all still there: a fast run that erased the wrong records proves nothing.
func checkErased(t *testing.T, ctx context.Context, st *stores, set string, n int) {
	t.Helper()
	if st.mode == modeLinkedRequests {
		st.linked.checkLinkedErased(t, ctx, st, set, "x"+set)
	}
	if pg, my, rd := present(t, ctx, st, set, n); pg+my+rd != 0 {
		t.Fatalf("set %s: subjects left after erasure: postgres %d rows, mariadb %d rows, redis %d keys", set, pg, my, rd)
	}
	if pg, my, rd := present(t, ctx, st, "x"+set, n); pg != int64(n) || my != int64(n) || rd != 2*int64(n) {
		t.Fatalf("set %s: bystanders lost: postgres %d of %d rows, mariadb %d of %d, redis %d of %d keys", set, pg, n, my, n, rd, 2*n)
	}
}

// specs are the DataStores of mode: PostgreSQL, MariaDB and Redis; the linked mode has only the
// two SQL stores, found by email alone (what a portal usually knows).
func specs(mode string) map[string]privacyv1alpha1.DataStoreSpec {
	byEmailAndID := []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}, {Column: "id", Identifier: "userId"}}
	tables := []privacyv1alpha1.TableMapping{{Name: "customers", Action: privacyv1alpha1.ActionDelete, Match: byEmailAndID}}
	switch mode {
	case modeLinkedRequests:
		tables = linkedTables(byEmailAndID, false)
	case modeLinked:
		tables = linkedTables([]privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}, true)
	}
	ref := func(name string) *privacyv1alpha1.SecretKeySelector {
		return &privacyv1alpha1.SecretKeySelector{Name: name, Key: "secret"}
	}
	out := map[string]privacyv1alpha1.DataStoreSpec{
		"pg": {Type: privacyv1alpha1.StoreTypePostgres, Connection: privacyv1alpha1.Connection{SecretRef: ref("pg")}, Tables: tables},
		"my": {Type: privacyv1alpha1.StoreTypeMySQL, Connection: privacyv1alpha1.Connection{SecretRef: ref("my")}, Tables: tables},
	}
	if mode != modeLinked {
		out["rd"] = privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeRedis, Connection: privacyv1alpha1.Connection{SecretRef: ref("rd")},
			// Exact keys: a glob pattern walks the whole keyspace per subject (see docs/benchmarks.md).
			Keys: []privacyv1alpha1.KeyMapping{
				{Pattern: "session:{userId}:web", Action: privacyv1alpha1.KeyActionDelete},
				{Pattern: "cart:{userId}", Action: privacyv1alpha1.KeyActionDelete},
			}}
	}
	return out
}

func (st *stores) secrets() map[string]string {
	return map[string]string{"pg": st.pgDSN, "my": st.myDSN, "rd": st.redisURL}
}

// createDataStores creates one DataStore per store in ns, with its connection Secret.
func createDataStores(t *testing.T, ctx context.Context, c client.Client, st *stores, ns string) {
	t.Helper()
	for name, spec := range specs(st.mode) {
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeConnection}},
			StringData: map[string]string{"secret": st.secrets()[name]}}); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}); err != nil {
			t.Fatal(err)
		}
	}
}

func waitDataStoresReady(t *testing.T, ctx context.Context, c client.Client, ns string, want int) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		var list privacyv1alpha1.DataStoreList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, ds := range list.Items {
			if meta.IsStatusConditionTrue(ds.Status.Conditions, privacyv1alpha1.ConditionReady) {
				ready++
			}
		}
		if ready == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("DataStores not Ready after 2 minutes: %+v", list.Items)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runStoreFloor is floor (a): set's subjects erased and verified with the connector clients alone,
// with the manager's concurrency (requestConcurrency subjects at once, each subject's stores
// concurrently), and no Kubernetes.
func runStoreFloor(t *testing.T, ctx context.Context, st *stores, set string, n int) time.Duration {
	t.Helper()
	clients := floorClients(t, ctx, st)
	start := time.Now()
	parallel(n, requestConcurrency, func(i int) {
		req := connector.Request{ID: fmt.Sprintf("floor-%d", i), Identifiers: identifiers(set, i)}
		var wg sync.WaitGroup
		for _, cl := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := req
				// Linked data: a store that provides identifiers derives them first, as the
				// operator does at acceptance.
				if d, ok := cl.(connector.Deriver); ok && st.mode != modeRequests {
					der, err := d.Derive(ctx, req)
					if err != nil {
						t.Error(err)
						return
					}
					req.Values, req.Shared = der.Values, der.Shared
				}
				res, err := cl.Erase(ctx, req)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Erased == 0 {
					t.Errorf("store floor: subject %d: nothing erased", i)
				}
				if v, err := cl.Verify(ctx, req); err != nil || v.Remaining != 0 {
					t.Errorf("store floor: verify: %+v %v", v, err)
				}
			}()
		}
		wg.Wait()
	})
	return time.Since(start)
}

// floorClients are the connector clients of every store of the mode, as the manager makes them,
// closed at the end of the test.
func floorClients(t *testing.T, ctx context.Context, st *stores) map[string]connector.Client {
	t.Helper()
	clients := map[string]connector.Client{}
	for name, spec := range specs(st.mode) {
		p, err := connector.ProviderFor(spec.Type)
		if err != nil {
			t.Fatal(err)
		}
		s := spec
		cl, err := p.NewClient(ctx, connector.Config{Name: "floor " + name, Spec: &s, Secret: []byte(st.secrets()[name])})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		clients[name] = cl
	}
	return clients
}
