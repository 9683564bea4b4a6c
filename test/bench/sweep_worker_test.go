package bench

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// Workers of the sweep mode, each run in a process of its own.
const (
	workerPGSweep    = "pg-sweep"
	workerPGFloor    = "pg-floor"
	workerRedisSweep = "redis-sweep"
	workerRedisFloor = "redis-floor"
)

// workerResultPrefix starts the line a worker writes its result on.
const workerResultPrefix = "sweep-worker-result: "

type workerResult struct {
	Seconds     float64 `json:"seconds"`
	ListSeconds float64 `json:"listSeconds"`
	Scanned     int64   `json:"scanned"`
	Hits        int64   `json:"hits"`
	PeakRSSMiB  float64 `json:"peakRSSMiB"`
	// ListHeapMiB is the Go heap in use once the list is built, after a collection: what the
	// list itself costs.
	ListHeapMiB float64 `json:"listHeapMiB"`
}

// sweepList is a list fed by DeletionRequests, as the manager holds it while it sweeps: the keyed
// hashes of the entries, and the matcher the SuppressionList controller builds from them.
type sweepList struct {
	hasher suppression.KeyedHasher
	set    *suppression.Set
}

func newSweepList(key []byte, sz sweepSizes) *sweepList {
	l := &sweepList{hasher: suppression.KeyedHasher{Key: key}}
	entries := make([]suppression.Entry, 0, sz.entries)
	for k := range sz.entries {
		email := fmt.Sprintf("absent%d@example.org", k)
		if k < sz.hits {
			email = sweepNorm(sz.hitRow(k))
		}
		h, _ := l.hasher.HashOf("email", normalize.Email, email)
		entries = append(entries, suppression.Entry{Hash: h, Kind: suppression.KindEmail})
	}
	l.set = suppression.NewSet(entries)
	return l
}

// match is the controller's listMatcher.match for a keyed list.
func (l *sweepList) match(identifier string, kind normalize.Kind, value string) bool {
	h, ok := l.hasher.HashOf(identifier, kind, value)
	return ok && l.set.Contains(h, suppression.KindOf(kind))
}

func TestBenchSweepWorker(t *testing.T) {
	worker := os.Getenv("BENCH_SWEEP_WORKER")
	if worker == "" {
		t.Skip("a worker of make bench BENCH_MODE=sweep")
	}
	ctx := context.Background()
	sz, err := sweepSizesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(os.Getenv("BENCH_SWEEP_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	listStart := time.Now()
	list := newSweepList(key, sz)
	res := workerResult{ListSeconds: time.Since(listStart).Seconds()}
	runtime.GC()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	res.ListHeapMiB = float64(mem.HeapAlloc) / (1 << 20)

	start := time.Now()
	switch worker {
	case workerPGSweep, workerRedisSweep:
		res.Scanned, res.Hits = connectorSweep(t, ctx, worker, list)
	case workerPGFloor:
		res.Scanned, res.Hits = postgresFloor(t, ctx, os.Getenv("BENCH_SWEEP_DSN"), list)
	case workerRedisFloor:
		res.Scanned, res.Hits = redisFloor(t, ctx, os.Getenv("BENCH_SWEEP_REDIS"), list)
	default:
		t.Fatalf("BENCH_SWEEP_WORKER=%q", worker)
	}
	res.Seconds = time.Since(start).Seconds()
	if res.PeakRSSMiB, err = peakRSSMiB(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(res)
	fmt.Println(workerResultPrefix + string(js))
}

// connectorSweep sweeps with the connector the manager uses, unpaced (the manager paces at
// 20,000 values per second by default: this measures what the pace leaves room for).
func connectorSweep(t *testing.T, ctx context.Context, worker string, list *sweepList) (scanned, hits int64) {
	t.Helper()
	spec := privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypePostgres,
		Tables: []privacyv1alpha1.TableMapping{{Name: "contacts", Action: privacyv1alpha1.ActionDelete,
			Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}}}}
	secret := os.Getenv("BENCH_SWEEP_DSN")
	if worker == workerRedisSweep {
		spec = privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeRedis,
			Keys: []privacyv1alpha1.KeyMapping{{Pattern: "profile:{email}", Action: privacyv1alpha1.KeyActionDelete}}}
		secret = os.Getenv("BENCH_SWEEP_REDIS")
	}
	p, err := connector.ProviderFor(spec.Type)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := p.NewClient(ctx, connector.Config{Name: "sweep bench", Spec: &spec, Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	stats, err := cl.(connector.Sweeper).Sweep(ctx, connector.SweepOptions{Match: list.match}, func(connector.SweepHit) error {
		hits++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return stats.Scanned, hits
}

// postgresFloor streams the column in one query with the same driver and matches each value as
// the sweep does.
func postgresFloor(t *testing.T, ctx context.Context, dsn string, list *sweepList) (scanned, hits int64) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT email FROM contacts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var v string
	for rows.Next() {
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		scanned++
		if list.match("email", normalize.Email, v) {
			hits++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return scanned, hits
}

// redisFloor SCANs the keyspace with the same driver and page size and matches each key's value.
func redisFloor(t *testing.T, ctx context.Context, url string, list *sweepList) (scanned, hits int64) {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "profile:*", floorScanCount).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			scanned++
			if v, ok := strings.CutPrefix(k, "profile:"); ok && list.match("email", normalize.Email, v) {
				hits++
			}
		}
		if cursor = next; cursor == 0 {
			return scanned, hits
		}
	}
}

// floorScanCount is the COUNT of the floor's SCAN: the connector's own (internal/connector/redis).
const floorScanCount = 10000
