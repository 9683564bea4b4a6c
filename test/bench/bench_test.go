// Package bench measures dsr-operator end to end against its floors (make bench). TestBench runs
// only when BENCH_REQUESTS is set, so that make test stays fast; see docs/benchmarks.md.
//
// Environment:
//
//	BENCH_REQUESTS=N     requests (and subjects); required
//	BENCH_MODE=requests  what is measured (docs/benchmarks.md):
//	                     requests         N requests over PostgreSQL, MariaDB and Redis (the default)
//	                     linked-requests  the same, with the SQL stores mapping customers -> orders ->
//	                                      order_item through provides/match (7 rows per subject)
//	                     linked           one subject with BENCH_LINKED_ROWS rows over customers,
//	                                      orders, order_item and login in both SQL stores, against a
//	                                      plain Go program doing the same deletes (BENCH_REQUESTS is
//	                                      ignored)
//	                     sweep            a SuppressionList sweep of PostgreSQL and Redis by the
//	                                      connectors, against plain Go programs (sweep_test.go;
//	                                      BENCH_SWEEP_ROWS, _KEYS, _ENTRIES, _HITS, _RUNS)
//	                     export           one person's access export of BENCH_EXPORT_MB (50) MB in
//	                                      JSON + CSV + HTML to an S3 bucket, links checked, bucket
//	                                      empty after BENCH_EXPORT_TTL (export_test.go)
//	BENCH_LINKED_ROWS=10000  the linked mode's rows per store
//	BENCH_PAIRS=3        how many times the requests, linked-requests and linked modes run
//	                     their floors and the operator, alternately, each pair on subjects and
//	                     namespaces of its own; they report the medians and the spread
//	BENCH_LINKED_STORES_ONLY=1  the linked mode without the control plane and the operator: the
//	                     floor and the connector alone, three times each, interleaved
//	BENCH_GRACE=5m       how long to wait beyond N*200ms for every request to be Verified
//	BENCH_DIAG=1         serve the manager's pprof and metrics on loopback, save CPU profiles of the
//	                     manager and the API server during the run, the manager's heap profile and
//	                     both /metrics into test/bench/out, print the manager's reconcile, queue and
//	                     client figures, and run the API floor variants (N <= 2000)
//	BENCH_PROFILE_SECONDS=30  length of that CPU profile, from the first create
//	BENCH_SUMMARY=file   write the summary line there instead of to stdout (make bench prints it last)
package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

const (
	// The manager's flags; the store floor uses the same concurrency.
	requestConcurrency = 32
	storeConcurrency   = 3
	kubeAPIQPS         = 500
	kubeAPIBurst       = 1000
	// portalConcurrency is how many creates the portal has in flight.
	portalConcurrency = 32

	operatorNamespace = "dsr-system"
	benchNamespace    = "bench"
	floorNamespace    = "apifloor"
)

func TestBench(t *testing.T) {
	nStr := os.Getenv("BENCH_REQUESTS")
	if nStr == "" {
		t.Skip("the benchmark runs with make bench (BENCH_REQUESTS=N)")
	}
	n, err := strconv.Atoi(nStr)
	if err != nil || n < 1 {
		t.Fatalf("BENCH_REQUESTS=%q is not a positive number", nStr)
	}
	diag := os.Getenv("BENCH_DIAG") != "" && os.Getenv("BENCH_DIAG") != "0"
	mode, err := benchMode()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(root, "test", "bench", "out")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	logf := func(format string, args ...any) { fmt.Printf("bench: "+format+"\n", args...) }
	ctrllog.SetLogger(logr.Discard())

	if mode == modeSweep {
		runSweep(t, ctx, logf) // sweep_test.go
		return
	}
	if mode == modeExport {
		runExport(t, ctx, root, outDir, diag, logf) // export_test.go
		return
	}
	if mode == modeLinked {
		// The control plane starts after the floor and the connector runs (see runLinked).
		logf("mode %s: starting PostgreSQL, MariaDB and Redis", mode)
		runLinked(t, ctx, startStores(t, ctx, mode), root, outDir, diag, logf)
		return
	}
	runRequests(t, ctx, mode, root, outDir, n, diag, logf) // requests_test.go
}

// writeSummary prints the summary line, or writes it to BENCH_SUMMARY: make bench prints it after
// go test's own closing lines, so that it is the last line.
func writeSummary(t *testing.T, summary string) {
	t.Helper()
	if file := os.Getenv("BENCH_SUMMARY"); file != "" {
		if err := os.WriteFile(file, []byte(summary), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	fmt.Print(summary)
}

const (
	modeRequests       = "requests"
	modeLinkedRequests = "linked-requests"
	modeLinked         = "linked"
	modeSweep          = "sweep"
	modeExport         = "export"
)

// benchMode is BENCH_MODE, by default requests.
func benchMode() (string, error) {
	switch m := os.Getenv("BENCH_MODE"); m {
	case "":
		return modeRequests, nil
	case modeRequests, modeLinkedRequests, modeLinked, modeSweep, modeExport:
		return m, nil
	default:
		return "", fmt.Errorf("BENCH_MODE=%q: want %s, %s, %s, %s or %s", m, modeRequests, modeLinkedRequests, modeLinked, modeSweep, modeExport)
	}
}

// reportStuck fails with what the requests that are not Verified say about themselves.
func reportStuck(t *testing.T, ctx context.Context, c client.Client, ns string, n int, done int64, logPath string) {
	t.Helper()
	var list privacyv1alpha1.DeletionRequestList
	_ = c.List(ctx, &list, client.InNamespace(ns))
	phases := map[string]int{}
	sample := ""
	for _, dr := range list.Items {
		phases[string(dr.Status.Phase)]++
		if !meta.IsStatusConditionTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) && sample == "" {
			sample = fmt.Sprintf("%s: %+v %+v", dr.Name, dr.Status.Conditions, dr.Status.Stores)
		}
	}
	t.Fatalf("only %d of %d seen Verified; phases %v; e.g. %s; manager log: %s", done, n, phases, sample, logPath)
}

// apiFloorVariants runs the API floor again with one write less of each kind, and with the
// operator's Secret reads, to show what each costs the API server.
func apiFloorVariants(t *testing.T, ctx context.Context, c client.Client, n int, fw floorWrites, secretGets float64, logf func(string, ...any)) {
	t.Helper()
	type variant struct {
		name string
		f    floorWrites
	}
	var vs []variant
	if fw.statusPatches > 0 {
		v := fw
		v.statusPatches--
		vs = append(vs, variant{"one status patch less", v})
	}
	if fw.events > 0 {
		v := fw
		v.events--
		vs = append(vs, variant{"no event", v})
	}
	if g := int(math.Round(secretGets / float64(n))); g > 0 {
		v := fw
		v.secretGets = g
		vs = append(vs, variant{"with the operator's Secret GETs", v})
	}
	for i, v := range vs {
		ns := fmt.Sprintf("%s-%d", floorNamespace, i+1)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		cpu := sampleCPU(0)
		d := runAPIFloor(t, ctx, c, ns, n, v.f)
		u := sampleCPU(0).since(cpu)
		logf("API floor variant %q (%s): %.2fs, kube-apiserver+etcd %.1f CPU s (%s)", v.name, v.f, d.Seconds(),
			u.groups["kube-apiserver"]+u.groups["etcd"], u)
	}
}

// saveDiagnostics keeps the manager's heap profile and both /metrics, and prints what the
// manager's own metrics say about where a request's time went.
func saveDiagnostics(t *testing.T, ctx context.Context, mgr *managerProcess, outDir string, n int, apiMetrics string, logf func(string, ...any)) {
	t.Helper()
	if err := fetch(ctx, mgr.pprof, "/debug/pprof/heap", filepath.Join(outDir, "heap.pprof")); err != nil {
		logf("heap profile: %v", err)
	}
	file := filepath.Join(outDir, "manager-metrics.txt")
	if err := fetch(ctx, mgr.metrics, "/metrics", file); err != nil {
		logf("manager metrics: %v", err)
		return
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := parseProm(string(raw))
	ctl := map[string]string{"controller": "deletionrequest"}
	q := map[string]string{"name": "deletionrequest"}
	per := func(v float64) float64 { return v / float64(n) }
	mean := func(name string, match map[string]string) float64 {
		c := sumOf(m, name+"_count", match)
		if c == 0 {
			return 0
		}
		return sumOf(m, name+"_sum", match) / c
	}
	fmt.Printf("\nmanager metrics (diagnostic run):\n")
	for _, res := range []string{"success", "requeue", "requeue_after", "error"} {
		fmt.Printf("    reconciles %-14s %6.2f per request\n", res, per(sumOf(m, "controller_runtime_reconcile_total", map[string]string{"controller": "deletionrequest", "result": res})))
	}
	fmt.Printf("    reconcile time       mean %.3f s\n", mean("controller_runtime_reconcile_time_seconds", ctl))
	fmt.Printf("    Go heap              %.1f MiB in use, %.1f MiB from the OS, next GC at %.1f MiB\n",
		sumOf(m, "go_memstats_heap_inuse_bytes", nil)/(1<<20), sumOf(m, "go_memstats_sys_bytes", nil)/(1<<20), sumOf(m, "go_memstats_next_gc_bytes", nil)/(1<<20))
	fmt.Printf("    queue wait           mean %.3f s\n", mean("workqueue_queue_duration_seconds", q))
	for _, op := range []string{"plan", "erase", "verify"} {
		fmt.Printf("    store %-6s          %6.2f per request\n", op, per(sumOf(m, "dsr_store_operations_total", map[string]string{"operation": op})))
	}
	var methods []string
	seen := map[string]bool{}
	for _, s := range m {
		if s.name == "rest_client_requests_total" && !seen[s.labels["method"]] {
			seen[s.labels["method"]] = true
			methods = append(methods, s.labels["method"])
		}
	}
	sort.Strings(methods)
	for _, meth := range methods {
		fmt.Printf("    client %-8s        %6.2f per request (includes start-up)\n", meth, per(sumOf(m, "rest_client_requests_total", map[string]string{"method": meth})))
	}
	if err := os.WriteFile(filepath.Join(outDir, "apiserver-metrics.txt"), []byte(apiMetrics), 0o644); err != nil {
		logf("API server metrics: %v", err)
	}
	logf("diagnostics in %s: cpu.pprof, heap.pprof, manager-metrics.txt, apiserver-cpu.pprof, apiserver-floor-cpu.pprof (after the floor), apiserver-metrics.txt (go tool pprof -top %s)", outDir, filepath.Join(outDir, "cpu.pprof"))
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

// percentile of sorted values: the smallest value with at least p of the values at or below it.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func profileSeconds() int {
	if v, err := strconv.Atoi(os.Getenv("BENCH_PROFILE_SECONDS")); err == nil && v > 0 {
		return v
	}
	return 30
}

func benchGrace() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("BENCH_GRACE")); err == nil {
		return d
	}
	return 5 * time.Minute
}
