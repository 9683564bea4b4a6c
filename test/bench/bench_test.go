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
//	BENCH_LINKED_PAIRS=3  how many times the linked mode runs its floor and the operator,
//	                     alternately; it reports the medians and the spread
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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
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
	logf("mode %s: starting the control plane, PostgreSQL, MariaDB and Redis", mode)
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	st := startStores(t, ctx, mode)

	// Two sets of subjects, each with as many bystanders: "a" for the store floor, "b" for the
	// operator, so that neither finds the other's work done.
	logf("seeding %d subjects and %d bystanders per store, twice", n, n)
	seed(t, ctx, st, "a", n)
	seed(t, ctx, st, "b", n)

	cfg := rest.CopyConfig(env.Config)
	// The harness must never be the bottleneck it measures.
	cfg.QPS, cfg.Burst = 5000, 10000
	c, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{operatorNamespace, benchNamespace, floorNamespace} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	logf("store floor: erase+verify of %d subjects x 3 stores by a plain Go program", n)
	cpu0 := sampleCPU(0)
	storeFloor := runStoreFloor(t, ctx, st, "a", n)
	storeFloorCPU := sampleCPU(0).since(cpu0)
	checkErased(t, ctx, st, "a", n)
	logf("store floor: %.2fs (CPU s: %s)", storeFloor.Seconds(), storeFloorCPU)

	mgr := startManager(t, root, outDir, env.KubeConfig, diag)
	createDataStores(t, ctx, c, st, benchNamespace)
	waitDataStoresReady(t, ctx, c, benchNamespace, len(specs(mode)))
	w := watchVerified(t, ctx, cfg, benchNamespace, "r", n)
	defer w.stop()

	apiBefore := parseProm(scrape(t, ctx, cfg))
	cpuBefore := sampleCPU(mgr.pid())
	var profiling sync.WaitGroup
	if diag {
		secs := profileSeconds()
		profiling.Add(2)
		go func() {
			defer profiling.Done()
			if err := fetch(ctx, mgr.pprof, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(outDir, "cpu.pprof")); err != nil {
				logf("CPU profile: %v", err)
			}
		}()
		// The API server profiles itself too (--profiling defaults to true), for cluster admins.
		go func() {
			defer profiling.Done()
			if err := apiServerProfile(ctx, cfg, secs, filepath.Join(outDir, "apiserver-cpu.pprof")); err != nil {
				logf("API server CPU profile: %v", err)
			}
		}()
	}

	logf("creating %d DeletionRequests with their identifiers Secrets (%d in flight)", n, portalConcurrency)
	created := make([]time.Time, n)
	start := time.Now()
	createRequests(t, ctx, c, benchNamespace, "b", n, created)
	if t.Failed() {
		t.FailNow()
	}
	createdIn := time.Since(start)
	logf("created in %.2fs (%.0f/s); waiting for every request to be Verified", createdIn.Seconds(), float64(n)/createdIn.Seconds())
	deadline := start.Add(time.Duration(n)*200*time.Millisecond + benchGrace())
	lastReport := time.Now()
	for w.done.Load() < int64(n) {
		if time.Now().After(deadline) {
			reportStuck(t, ctx, c, n, w.done.Load(), mgr.logPath)
		}
		if time.Since(lastReport) >= 30*time.Second {
			logf("%d of %d Verified after %.0fs", w.done.Load(), n, time.Since(start).Seconds())
			lastReport = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpuUsed := sampleCPU(mgr.pid()).since(cpuBefore)
	// Events are sent asynchronously after the status write that made a request Verified.
	time.Sleep(2 * time.Second)
	apiAfterRaw := scrape(t, ctx, cfg)
	apiAfter := parseProm(apiAfterRaw)
	rss, err := peakRSSMiB(mgr.pid())
	if err != nil {
		t.Fatal(err)
	}
	rssAnon, rssFile := rssMiB(mgr.pid())
	if diag {
		profiling.Wait()
		saveDiagnostics(t, ctx, mgr, outDir, n, apiAfterRaw, logf)
	}
	mgr.stop()
	w.stop()
	checkErased(t, ctx, st, "b", n)

	// Every request's own record agrees: Verified=True, a receipt. Latency from the timestamps the
	// API server keeps (second resolution) as a cross-check of the watched latency.
	var list privacyv1alpha1.DeletionRequestList
	if err := c.List(ctx, &list, client.InNamespace(benchNamespace)); err != nil {
		t.Fatal(err)
	}
	var stamped []float64
	var template *privacyv1alpha1.DeletionRequest
	for i := range list.Items {
		dr := &list.Items[i]
		cond := meta.FindStatusCondition(dr.Status.Conditions, privacyv1alpha1.ConditionVerified)
		if cond == nil || cond.Status != metav1.ConditionTrue || dr.Status.Receipt == nil {
			t.Fatalf("%s: seen Verified, but its status is %+v", dr.Name, dr.Status)
		}
		stamped = append(stamped, cond.LastTransitionTime.Sub(dr.CreationTimestamp.Time).Seconds())
		if template == nil {
			template = dr
		}
	}
	if len(list.Items) != n {
		t.Fatalf("%d requests listed, %d created", len(list.Items), n)
	}

	// API writes: the API server counts requests by verb and resource, not by client. The
	// harness's own writes in the window are exactly one Secret and one DeletionRequest per
	// request; the informer and the metrics scrapes only read. The API server's own controllers
	// touch leases (its identity lease, renewed every 10 s), services and endpoints, which the
	// manager cannot: it runs without leader election and its ClusterRole does not name them.
	// Everything else is the operator's.
	delta := requestCounts(apiAfter).minus(requestCounts(apiBefore))
	harness := apiCounts{"POST secrets": float64(n), "POST deletionrequests": float64(n)}
	apiServersOwn := map[string]bool{"leases": true, "services": true, "endpoints": true, "endpointslices": true}
	operatorCounts := apiCounts{}
	for k, v := range delta {
		if apiServersOwn[strings.Fields(k)[1]] {
			continue
		}
		if d := v - harness[k]; d != 0 {
			operatorCounts[k] = d
		}
	}
	operatorWrites := operatorCounts.writes()
	perRequest := operatorWrites / float64(n)

	fw := floorWritesFrom(operatorCounts, n)
	fw.templates(t, ctx, c, template)
	logf("API floor: %d Secrets and requests plus %s each, by a plain client", n, fw)
	var floorProfile sync.WaitGroup
	if diag {
		floorProfile.Add(1)
		go func() {
			defer floorProfile.Done()
			if err := apiServerProfile(ctx, cfg, profileSeconds(), filepath.Join(outDir, "apiserver-floor-cpu.pprof")); err != nil {
				logf("API server CPU profile of the API floor: %v", err)
			}
		}()
	}
	cpu1 := sampleCPU(0)
	apiFloor := runAPIFloor(t, ctx, c, floorNamespace, n, fw)
	apiFloorCPU := sampleCPU(0).since(cpu1)
	floorProfile.Wait()
	logf("API floor: %.2fs, kube-apiserver+etcd %.1f CPU s (%s)", apiFloor.Seconds(),
		apiFloorCPU.groups["kube-apiserver"]+apiFloorCPU.groups["etcd"], apiFloorCPU)

	// Variants are for diagnosis at sizes where four more floors take a minute, not an hour.
	if diag && n <= 2000 {
		apiFloorVariants(t, ctx, c, n, fw, operatorCounts["GET secrets"], logf)
	}

	lat := make([]float64, n)
	for i := range n {
		lat[i] = w.verified[i].Sub(created[i]).Seconds()
	}
	sort.Float64s(lat)
	sort.Float64s(stamped)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	ratio := elapsed.Seconds() / math.Max(storeFloor.Seconds(), apiFloor.Seconds())

	fmt.Printf("\nrequests            %d (3 stores each: PostgreSQL, MariaDB, Redis)\n", n)
	fmt.Printf("end to end          %.2f s, %.1f requests/s (created in %.2f s)\n", elapsed.Seconds(), float64(n)/elapsed.Seconds(), createdIn.Seconds())
	fmt.Printf("created->Verified   p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s (watched); p50 %.0f s, p99 %.0f s (creationTimestamp->lastTransitionTime, 1 s resolution)\n",
		p50, percentile(lat, 0.90), p99, lat[n-1], percentile(stamped, 0.50), percentile(stamped, 0.99))
	fmt.Printf("API writes          %.0f by the operator, %.2f per request (the harness's own %d excluded)\n", operatorWrites, perRequest, 2*n)
	fmt.Printf("API requests by the operator, per request:\n")
	for _, k := range operatorCounts.sortedKeys() {
		fmt.Printf("    %-48s %7.2f\n", k, operatorCounts[k]/float64(n))
	}
	fmt.Printf("manager peak RSS    %.1f MiB (at the end: %.1f MiB anonymous, %.1f MiB file pages, mostly its code)\n", rss, rssAnon, rssFile)
	fmt.Printf("CPU s, end to end   %s\n", cpuUsed)
	fmt.Printf("CPU s per request   manager %.1f ms, kube-apiserver+etcd %.1f ms, databases %.1f ms\n",
		1000*cpuUsed.groups["manager"]/float64(n), 1000*(cpuUsed.groups["kube-apiserver"]+cpuUsed.groups["etcd"])/float64(n),
		1000*(cpuUsed.groups["postgres"]+cpuUsed.groups["mariadb"]+cpuUsed.groups["redis"])/float64(n))
	// On a machine where the stores and the API server share the same cores, the two floors cannot
	// overlap as max() assumes; their sum is the other bound.
	fmt.Printf("floors              store %.2f s, API %.2f s; ratio %.2f to the larger, %.2f to their sum\n",
		storeFloor.Seconds(), apiFloor.Seconds(), ratio, elapsed.Seconds()/(storeFloor.Seconds()+apiFloor.Seconds()))
	// Seconds move with whatever else runs on the machine; the CPU the benchmark's own processes
	// used does not, much.
	e2eCPU, storeCPU, apiCPU := cpuUsed.ours(), storeFloorCPU.ours(), apiFloorCPU.ours()
	fmt.Printf("CPU core-seconds    end to end %.1f, store floor %.1f, API floor %.1f; ratio %.2f to the larger, %.2f to their sum\n",
		e2eCPU, storeCPU, apiCPU, e2eCPU/math.Max(storeCPU, apiCPU), e2eCPU/(storeCPU+apiCPU))
	summary := fmt.Sprintf("bench: mode=%s requests=%d stores=3 seconds=%.2f throughput=%.2f p50=%.3f p99=%.3f api_writes_per_request=%.2f manager_peak_rss_mib=%.1f store_floor_seconds=%.2f api_floor_seconds=%.2f ratio_to_floor=%.2f\n",
		mode, n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), p50, p99, perRequest, rss, storeFloor.Seconds(), apiFloor.Seconds(), ratio)
	writeSummary(t, summary)
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
func reportStuck(t *testing.T, ctx context.Context, c client.Client, n int, done int64, logPath string) {
	t.Helper()
	var list privacyv1alpha1.DeletionRequestList
	_ = c.List(ctx, &list, client.InNamespace(benchNamespace))
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
