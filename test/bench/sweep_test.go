package bench

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// The sweep mode (BENCH_MODE=sweep): a SuppressionList's sweep of one PostgreSQL table of
// BENCH_SWEEP_ROWS rows (default 10,000,000) and of BENCH_SWEEP_KEYS Redis keys (default
// 1,000,000) for BENCH_SWEEP_ENTRIES keyed entries (default 1,000,000, of which
// BENCH_SWEEP_HITS, default 1000, are stored), with the connectors' Sweep and the list's matcher
// as the manager runs them, without Kubernetes, against a floor: a plain Go program that streams
// the same column or keyspace with the same driver and normalises, hashes and looks up each value
// the same way. Each run is its own process (a worker: see sweep_worker_test.go), so that its
// peak RSS is that of a process holding the list and sweeping, not of the harness that seeded
// the stores. BENCH_SWEEP_RUNS (default 3) runs of each, interleaved.

// sweepSizes are the sweep mode's sizes.
type sweepSizes struct {
	rows, keys, entries, hits, runs int
}

func sweepSizesFromEnv() (sweepSizes, error) {
	s := sweepSizes{rows: 10_000_000, keys: 1_000_000, entries: 1_000_000, hits: 1000, runs: 3}
	for name, p := range map[string]*int{"BENCH_SWEEP_ROWS": &s.rows, "BENCH_SWEEP_KEYS": &s.keys,
		"BENCH_SWEEP_ENTRIES": &s.entries, "BENCH_SWEEP_HITS": &s.hits, "BENCH_SWEEP_RUNS": &s.runs} {
		v := os.Getenv(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
		if err != nil || n < 1 {
			return s, fmt.Errorf("%s=%q: want a positive number", name, v)
		}
		*p = n
	}
	if s.hits > s.entries || s.hits > min(s.rows, s.keys) {
		return s, fmt.Errorf("BENCH_SWEEP_HITS=%d: more than the entries, rows or keys", s.hits)
	}
	return s, nil
}

// sweepEmail is the stored email of row i; every seventh is written in another case with
// surrounding spaces, so that the sweep must normalise. sweepNorm is its normalised form.
func sweepEmail(i int) string {
	if i%7 == 0 {
		return fmt.Sprintf(" C%d@Example.COM ", i)
	}
	return sweepNorm(i)
}

func sweepNorm(i int) string { return fmt.Sprintf("c%d@example.com", i) }

// hitRow is the row (and key) of the list's k-th stored entry, spread over the whole table.
func (s sweepSizes) hitRow(k int) int { return k * (min(s.rows, s.keys) / s.hits) }

func runSweep(t *testing.T, ctx context.Context, logf func(string, ...any)) {
	t.Helper()
	sz, err := sweepSizesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	logf("mode sweep: starting PostgreSQL and Redis")
	pg, err := teststore.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	rd, err := teststore.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rd.Close() })
	dsn, err := pg.CreateDatabase(ctx, "sweep")
	if err != nil {
		t.Fatal(err)
	}
	redisURL := rd.URL(0)

	start := time.Now()
	logf("seeding %d rows into PostgreSQL and %d keys into Redis", sz.rows, sz.keys)
	seedSweepPostgres(t, ctx, dsn, sz.rows)
	seedSweepRedis(t, ctx, redisURL, sz.keys)
	logf("seeded in %.1fs", time.Since(start).Seconds())

	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i*7 + 1)
	}
	env := []string{"BENCH_SWEEP_DSN=" + dsn, "BENCH_SWEEP_REDIS=" + redisURL, "BENCH_SWEEP_KEY=" + hex.EncodeToString(key),
		fmt.Sprintf("BENCH_SWEEP_ROWS=%d", sz.rows), fmt.Sprintf("BENCH_SWEEP_KEYS=%d", sz.keys),
		fmt.Sprintf("BENCH_SWEEP_ENTRIES=%d", sz.entries), fmt.Sprintf("BENCH_SWEEP_HITS=%d", sz.hits)}
	results := map[string][]workerResult{}
	for run := 1; run <= sz.runs; run++ {
		for _, w := range []string{workerPGFloor, workerPGSweep, workerRedisFloor, workerRedisSweep} {
			r := runSweepWorker(t, w, env)
			wantScanned := int64(sz.rows)
			if w == workerRedisFloor || w == workerRedisSweep {
				wantScanned = int64(sz.keys)
			}
			if r.Hits != int64(sz.hits) || r.Scanned != wantScanned {
				t.Fatalf("%s: %d hits of %d values, want %d of %d", w, r.Hits, r.Scanned, sz.hits, wantScanned)
			}
			logf("run %d %-12s %7.2fs sweep (list built in %.2fs, %.1f MiB of heap), %d values, %d hits, peak RSS %.1f MiB",
				run, w, r.Seconds, r.ListSeconds, r.ListHeapMiB, r.Scanned, r.Hits, r.PeakRSSMiB)
			results[w] = append(results[w], r)
		}
	}
	writeSummary(t, sweepSummary(sz, results))
}

// sweepSummary is the summary line: medians over the runs, and each ratio's spread over the runs
// (each run's connector against the floor run just before it).
func sweepSummary(sz sweepSizes, results map[string][]workerResult) string {
	median := func(v []float64) (med, lo, hi float64) {
		v = slices.Clone(v)
		sort.Float64s(v)
		return v[len(v)/2], v[0], v[len(v)-1]
	}
	field := func(w string, f func(workerResult) float64) []float64 {
		var v []float64
		for _, r := range results[w] {
			v = append(v, f(r))
		}
		return v
	}
	secs := func(r workerResult) float64 { return r.Seconds }
	rss := func(r workerResult) float64 { return r.PeakRSSMiB }
	ratios := func(sweep, floor string) []float64 {
		var v []float64
		for i := range results[sweep] {
			v = append(v, results[sweep][i].Seconds/results[floor][i].Seconds)
		}
		return v
	}
	pgS, _, _ := median(field(workerPGSweep, secs))
	pgF, _, _ := median(field(workerPGFloor, secs))
	rdS, _, _ := median(field(workerRedisSweep, secs))
	rdF, _, _ := median(field(workerRedisFloor, secs))
	pgR, pgLo, pgHi := median(ratios(workerPGSweep, workerPGFloor))
	rdR, rdLo, rdHi := median(ratios(workerRedisSweep, workerRedisFloor))
	_, _, sweepRSS := median(append(field(workerPGSweep, rss), field(workerRedisSweep, rss)...))
	_, _, floorRSS := median(append(field(workerPGFloor, rss), field(workerRedisFloor, rss)...))
	return fmt.Sprintf("bench: mode=sweep rows=%d keys=%d entries=%d hits=%d runs=%d "+
		"pg_seconds=%.2f pg_floor_seconds=%.2f pg_rows_per_second=%.0f pg_ratio_to_floor=%.2f pg_ratio_min=%.2f pg_ratio_max=%.2f "+
		"redis_seconds=%.2f redis_floor_seconds=%.2f redis_keys_per_second=%.0f redis_ratio_to_floor=%.2f redis_ratio_min=%.2f redis_ratio_max=%.2f "+
		"ratio_to_floor=%.2f sweep_peak_rss_mib=%.1f floor_peak_rss_mib=%.1f\n",
		sz.rows, sz.keys, sz.entries, sz.hits, sz.runs,
		pgS, pgF, float64(sz.rows)/pgS, pgR, pgLo, pgHi,
		rdS, rdF, float64(sz.keys)/rdS, rdR, rdLo, rdHi,
		max(pgR, rdR), sweepRSS, floorRSS)
}

// seedSweepPostgres fills contacts with rows generated by the server itself (seconds per million),
// then indexes the email column (as Check advises for a match column) and vacuums, as a
// production table mostly is.
func seedSweepPostgres(t *testing.T, ctx context.Context, dsn string, rows int) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE contacts (id BIGINT PRIMARY KEY, email TEXT NOT NULL, name TEXT)`,
		fmt.Sprintf(`INSERT INTO contacts SELECT i, CASE WHEN i %% 7 = 0 THEN ' C' || i || '@Example.COM ' ELSE 'c' || i || '@example.com' END, 'name ' || i FROM generate_series(0, %d) AS i`, rows-1),
		`CREATE INDEX contacts_email ON contacts (email)`,
		`VACUUM ANALYZE contacts`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.40s...: %v", q, err)
		}
	}
}

func seedSweepRedis(t *testing.T, ctx context.Context, url string, keys int) {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	const batch = 10000
	for from := 0; from < keys; from += batch {
		pipe := rdb.Pipeline()
		for i := from; i < min(from+batch, keys); i++ {
			pipe.Set(ctx, "profile:"+sweepEmail(i), "x", 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// runSweepWorker runs one worker in a process of its own (this test binary) and reads its result.
func runSweepWorker(t *testing.T, worker string, env []string) workerResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchSweepWorker$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), env...), "BENCH_SWEEP_WORKER="+worker)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var res *workerResult
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if js, ok := strings.CutPrefix(line, workerResultPrefix); ok {
			res = &workerResult{}
			if err := json.Unmarshal([]byte(js), res); err != nil {
				t.Fatal(err)
			}
			continue
		}
		lines = append(lines, line)
	}
	if err := cmd.Wait(); err != nil || res == nil {
		t.Fatalf("worker %s: %v\n%s", worker, err, strings.Join(lines, "\n"))
	}
	return *res
}
