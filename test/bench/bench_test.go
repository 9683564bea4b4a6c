// Package bench measures dsr-operator end to end against its floors (make bench). It runs only when
// BENCH_REQUESTS is set, so that make test stays fast.
package bench

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	goredis "github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/all"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

const (
	// The manager's concurrency, passed as flags, and used by the store floor too.
	requestConcurrency = 32
	storeConcurrency   = 3
	// portalConcurrency is how many creates a portal has in flight.
	portalConcurrency = 32
)

type stores struct {
	pgDSN, myDSN, redisURL string
	pg, my                 *sql.DB
	rdb                    *goredis.Client
}

func TestBench(t *testing.T) {
	nStr := os.Getenv("BENCH_REQUESTS")
	if nStr == "" {
		t.Skip("the benchmark runs with make bench (BENCH_REQUESTS=N)")
	}
	n, err := strconv.Atoi(nStr)
	if err != nil || n < 1 {
		t.Fatalf("BENCH_REQUESTS=%q is not a positive number", nStr)
	}
	ctx := context.Background()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	logf := func(format string, args ...any) { fmt.Printf("bench: "+format+"\n", args...) }
	ctrllog.SetLogger(logr.Discard())

	logf("starting the control plane, PostgreSQL, MariaDB and Redis")
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	st := startStores(t, ctx)

	// Two sets of subjects, each with as many bystanders: A for the store floor, B for the operator.
	logf("seeding %d subjects and %d bystanders per store, twice", n, n)
	seedAll(t, ctx, st, "a", n)
	seedAll(t, ctx, st, "b", n)

	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 5000, 10000
	c, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"dsr-system", "bench", "apifloor"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	logf("store floor: erase+verify of %d subjects x 3 stores by a plain Go program", n)
	storeFloor := runStoreFloor(t, ctx, st, "a", n)
	logf("store floor: %.2fs", storeFloor.Seconds())

	// The manager runs as its own process so that its peak RSS can be read.
	bin := filepath.Join(t.TempDir(), "manager")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the manager: %v\n%s", err, out)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(root, "test", "bench", "out")
	_ = os.MkdirAll(outDir, 0o755)
	logPath := filepath.Join(outDir, "manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	pprofAddr := os.Getenv("BENCH_PPROF")
	args := []string{"--kubeconfig", kubeconfig, "--operator-namespace", "dsr-system", "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--request-concurrency", strconv.Itoa(requestConcurrency), "--store-concurrency", strconv.Itoa(storeConcurrency),
		"--kube-api-qps", "500", "--kube-api-burst", "1000"}
	if pprofAddr != "" {
		args = append(args, "--pprof-bind-address", pprofAddr)
	}
	mgr := exec.Command(bin, args...)
	mgr.Stdout, mgr.Stderr = logFile, logFile
	if err := mgr.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mgr.Process.Kill(); _ = mgr.Wait() }()

	createStores(t, ctx, c, st)
	waitStoresReady(t, ctx, c)

	writesBefore := apiWrites(t, ctx, cfg)
	logf("creating %d DeletionRequests with their identifiers Secrets (%d in flight)", n, portalConcurrency)
	created := make([]time.Time, n)
	verified := make([]time.Time, n)
	var done atomic.Int64
	stopWatch := watchVerified(t, ctx, cfg, n, verified, &done)
	start := time.Now()
	parallel(n, portalConcurrency, func(i int) {
		name := fmt.Sprintf("r%06d", i)
		id := subjectID("b", i)
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
			StringData: map[string]string{"email": id + "@example.com", "userId": id}}); err != nil {
			t.Error(err)
			return
		}
		created[i] = time.Now()
		if err := c.Create(ctx, &privacyv1alpha1.DeletionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
			Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: privacyv1alpha1.RegulationGDPR,
				Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: name}}}}}); err != nil {
			t.Error(err)
		}
	})
	logf("created in %.2fs; waiting for every request to be Verified", time.Since(start).Seconds())
	deadline := time.Now().Add(time.Duration(n)*200*time.Millisecond + benchGrace())
	for done.Load() < int64(n) {
		if time.Now().After(deadline) {
			var list privacyv1alpha1.DeletionRequestList
			_ = c.List(ctx, &list, client.InNamespace("bench"))
			phases := map[string]int{}
			sample := ""
			for _, dr := range list.Items {
				phases[string(dr.Status.Phase)]++
				if !meta.IsStatusConditionTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) && sample == "" {
					sample = fmt.Sprintf("%s: %+v %+v", dr.Name, dr.Status.Conditions, dr.Status.Stores)
				}
			}
			t.Fatalf("only %d of %d seen verified; phases %v; e.g. %s; manager log: %s", done.Load(), n, phases, sample, logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stopWatch()
	// Let the last status writes land before reading the counters.
	time.Sleep(time.Second)
	writesAfter := apiWrites(t, ctx, cfg)
	rss := peakRSSMiB(t, mgr.Process.Pid)
	_ = mgr.Process.Kill()
	_ = mgr.Wait()

	harnessWrites := 2 * n // one Secret and one DeletionRequest per request
	operatorWrites := writesAfter - writesBefore - float64(harnessWrites)
	perRequest := operatorWrites / float64(n)

	// The API floor: the same objects and the same number of writes per request, no store work.
	logf("API floor: %d Secrets and requests plus %.1f writes each, by a plain client", n, perRequest)
	apiFloor := runAPIFloor(t, ctx, c, n, int(math.Round(perRequest)))
	logf("API floor: %.2fs", apiFloor.Seconds())

	lat := make([]float64, 0, n)
	for i := range n {
		lat = append(lat, verified[i].Sub(created[i]).Seconds())
	}
	sort.Float64s(lat)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	ratio := elapsed.Seconds() / math.Max(storeFloor.Seconds(), apiFloor.Seconds())
	fmt.Printf("\nrequests            %d (3 stores each: PostgreSQL, MariaDB, Redis)\n", n)
	fmt.Printf("end to end          %.2f s, %.1f requests/s\n", elapsed.Seconds(), float64(n)/elapsed.Seconds())
	fmt.Printf("created->Verified   p50 %.3f s, p99 %.3f s, max %.3f s\n", p50, p99, lat[len(lat)-1])
	fmt.Printf("API writes          %.0f by the operator (%.2f per request; the harness's own %d excluded)\n", operatorWrites, perRequest, harnessWrites)
	fmt.Printf("manager peak RSS    %.1f MiB\n", rss)
	fmt.Printf("floors              store %.2f s, API %.2f s; ratio %.2f\n", storeFloor.Seconds(), apiFloor.Seconds(), ratio)
	fmt.Printf("bench: requests=%d stores=3 seconds=%.2f throughput=%.2f p50=%.3f p99=%.3f api_writes_per_request=%.2f manager_peak_rss_mib=%.1f store_floor_seconds=%.2f api_floor_seconds=%.2f ratio_to_floor=%.2f\n",
		n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), p50, p99, perRequest, rss, storeFloor.Seconds(), apiFloor.Seconds(), ratio)
}

func subjectID(set string, i int) string { return fmt.Sprintf("%s%07d", set, i) }

func startStores(t *testing.T, ctx context.Context) *stores {
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
	st := &stores{redisURL: rd.URL(0)}
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
	opts, _ := goredis.ParseURL(st.redisURL)
	st.rdb = goredis.NewClient(opts)
	for _, db := range []*sql.DB{st.pg, st.my} {
		for _, s := range []string{
			`CREATE TABLE customers (id VARCHAR(32) NOT NULL, email VARCHAR(255) NOT NULL, name VARCHAR(255))`,
			`CREATE INDEX customers_email ON customers (email)`,
			`CREATE INDEX customers_id ON customers (id)`,
		} {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

// seedAll inserts n subjects of set and n bystanders into every store.
func seedAll(t *testing.T, ctx context.Context, st *stores, set string, n int) {
	t.Helper()
	const batch = 500
	for _, who := range []string{set, "x" + set} {
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
			pipe := st.rdb.Pipeline()
			for i := from; i < to; i++ {
				id := subjectID(who, i)
				pipe.Set(ctx, "session:"+id+":web", id+"@example.com", 0)
				pipe.Set(ctx, "cart:"+id, "sku", 0)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func specs(st *stores) map[string]privacyv1alpha1.DataStoreSpec {
	tables := []privacyv1alpha1.TableMapping{{Name: "customers", Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}, {Column: "id", Identifier: "userId"}}}}
	ref := func(name string) *privacyv1alpha1.SecretKeySelector {
		return &privacyv1alpha1.SecretKeySelector{Name: name, Key: "secret"}
	}
	return map[string]privacyv1alpha1.DataStoreSpec{
		"pg": {Type: privacyv1alpha1.StoreTypePostgres, Connection: privacyv1alpha1.Connection{SecretRef: ref("pg")}, Tables: tables},
		"my": {Type: privacyv1alpha1.StoreTypeMySQL, Connection: privacyv1alpha1.Connection{SecretRef: ref("my")}, Tables: tables},
		"rd": {Type: privacyv1alpha1.StoreTypeRedis, Connection: privacyv1alpha1.Connection{SecretRef: ref("rd")},
			// Exact keys: a glob pattern walks the whole keyspace per subject (see docs/benchmarks.md).
			Keys: []privacyv1alpha1.KeyMapping{{Pattern: "session:{userId}:web", Action: privacyv1alpha1.KeyActionDelete}, {Pattern: "cart:{userId}", Action: privacyv1alpha1.KeyActionDelete}}},
	}
}

func secrets(st *stores) map[string]string {
	return map[string]string{"pg": st.pgDSN, "my": st.myDSN, "rd": st.redisURL}
}

func createStores(t *testing.T, ctx context.Context, c client.Client, st *stores) {
	t.Helper()
	for name, spec := range specs(st) {
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name}, StringData: map[string]string{"secret": secrets(st)[name]}}); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name}, Spec: spec}); err != nil {
			t.Fatal(err)
		}
	}
}

func waitStoresReady(t *testing.T, ctx context.Context, c client.Client) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		var list privacyv1alpha1.DataStoreList
		if err := c.List(ctx, &list, client.InNamespace("bench")); err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, ds := range list.Items {
			if meta.IsStatusConditionTrue(ds.Status.Conditions, privacyv1alpha1.ConditionReady) {
				ready++
			}
		}
		if ready == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stores not ready: %+v", list.Items)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runStoreFloor erases and verifies set's subjects with the connectors alone, with the manager's
// concurrency: requestConcurrency subjects at once, their stores concurrently.
func runStoreFloor(t *testing.T, ctx context.Context, st *stores, set string, n int) time.Duration {
	t.Helper()
	var clients []connector.Client
	for name, spec := range specs(st) {
		p, err := connector.ProviderFor(spec.Type)
		if err != nil {
			t.Fatal(err)
		}
		s := spec
		cl, err := p.NewClient(ctx, connector.Config{Name: name, Spec: &s, Secret: []byte(secrets(st)[name])})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		clients = append(clients, cl)
	}
	start := time.Now()
	parallel(n, requestConcurrency, func(i int) {
		id := subjectID(set, i)
		req := connector.Request{ID: id, Identifiers: connector.Identifiers{"email": id + "@example.com", "userId": id}}
		var wg sync.WaitGroup
		for _, cl := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := cl.Erase(ctx, req); err != nil {
					t.Error(err)
					return
				}
				if v, err := cl.Verify(ctx, req); err != nil || v.Remaining != 0 {
					t.Errorf("floor verify: %+v %v", v, err)
				}
			}()
		}
		wg.Wait()
	})
	return time.Since(start)
}

// runAPIFloor creates n Secrets and requests and writes perRequest status patches to each, with
// no store behind them.
func runAPIFloor(t *testing.T, ctx context.Context, c client.Client, n, perRequest int) time.Duration {
	t.Helper()
	start := time.Now()
	parallel(n, portalConcurrency, func(i int) {
		name := fmt.Sprintf("f%06d", i)
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "apifloor", Name: name}, StringData: map[string]string{"email": name}}); err != nil {
			t.Error(err)
			return
		}
		dr := &privacyv1alpha1.DeletionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "apifloor", Name: name},
			Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: privacyv1alpha1.RegulationGDPR,
				Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: name}}}}}
		if err := c.Create(ctx, dr); err != nil {
			t.Error(err)
			return
		}
		for w := range perRequest {
			patch := fmt.Appendf(nil, `{"status":{"phase":"Erasing","storeCount":%d}}`, w)
			if err := c.Status().Patch(ctx, dr, client.RawPatch(types.MergePatchType, patch)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	return time.Since(start)
}

// watchVerified records when each request is first seen Verified, listing every 100ms: a list of
// a few thousand objects is cheap for the API server, and unlike a watch it cannot silently end.
func watchVerified(t *testing.T, ctx context.Context, cfg *rest.Config, n int, verified []time.Time, done *atomic.Int64) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	c, err := client.New(rest.CopyConfig(cfg), client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		seen := make([]bool, n)
		for ctx.Err() == nil {
			var list privacyv1alpha1.DeletionRequestList
			if err := c.List(ctx, &list, client.InNamespace("bench")); err == nil {
				now := time.Now()
				for i := range list.Items {
					dr := &list.Items[i]
					if !meta.IsStatusConditionTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
						continue
					}
					k, err := strconv.Atoi(strings.TrimPrefix(dr.Name, "r"))
					if err != nil || k >= n || seen[k] {
						continue
					}
					seen[k] = true
					verified[k] = now
					done.Add(1)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return cancel
}

// apiWrites reads the API server's own count of mutating requests.
func apiWrites(t *testing.T, ctx context.Context, cfg *rest.Config) float64 {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		mutating := false
		for _, v := range []string{`verb="POST"`, `verb="PUT"`, `verb="PATCH"`, `verb="DELETE"`, `verb="APPLY"`, `verb="CREATE"`, `verb="UPDATE"`} {
			if strings.Contains(line, v) {
				mutating = true
			}
		}
		if !mutating {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			total += f
		}
	}
	return total
}

// peakRSSMiB is VmHWM of a running process.
func peakRSSMiB(t *testing.T, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

func parallel(n, workers int, fn func(int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func benchGrace() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("BENCH_GRACE")); err == nil {
		return d
	}
	return 5 * time.Minute
}
