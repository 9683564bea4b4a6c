package bench

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

// requestsBench is the requests and linked-requests modes: pairs of an operator run (n requests,
// erased and verified by a manager started for it) and a floor run (the store floor, then the API
// floor), alternately, each pair on its own subjects and namespaces. The floors swing by a third
// between runs on a shared machine; only floors measured beside the operator, several times,
// say what the operator costs.
type requestsBench struct {
	t           *testing.T
	ctx         context.Context
	env         *testenv.Env
	cfg         *rest.Config
	c           client.Client
	st          *stores
	root        string
	outDir      string
	manager     string
	n           int
	diag        bool
	logf        func(string, ...any)
	fw          *floorWrites
	firstCounts apiCounts
}

// operatorRun is what one operator run measured.
type operatorRun struct {
	elapsed, createdIn    time.Duration
	latencies             []float64 // sorted, seconds
	counts                apiCounts
	cpu                   cpuUse
	rss, rssAnon, rssFile float64
	template              *privacyv1alpha1.DeletionRequest
}

// floorRun is what one floor run measured.
type floorRun struct {
	store, api       time.Duration
	storeCPU, apiCPU cpuUse
}

// settle is the pause before each timed run: InnoDB purges deleted rows' index entries in the
// background after a commit, and the API server compacts what the last run deleted.
const settle = 2 * time.Second

func runRequests(t *testing.T, ctx context.Context, mode, root, outDir string, n int, diag bool, logf func(string, ...any)) {
	t.Helper()
	pairs, err := benchPairs()
	if err != nil {
		t.Fatal(err)
	}
	logf("mode %s: starting the control plane, PostgreSQL, MariaDB and Redis", mode)
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	b := &requestsBench{t: t, ctx: ctx, env: env, root: root, outDir: outDir, n: n, diag: diag, logf: logf}
	b.st = startStores(t, ctx, mode)
	// Sets "a<k>" for pair k's store floor, "b<k>" for its operator run, so that none finds
	// another's work done.
	logf("seeding %d subjects and %d bystanders per store, for %d floor and %d operator runs", n, n, pairs, pairs)
	for k := 1; k <= pairs; k++ {
		seed(t, ctx, b.st, fmt.Sprintf("a%d", k), n)
		seed(t, ctx, b.st, fmt.Sprintf("b%d", k), n)
	}
	b.cfg = rest.CopyConfig(env.Config)
	// The harness must never be the bottleneck it measures.
	b.cfg.QPS, b.cfg.Burst = 5000, 10000
	if b.c, err = client.New(b.cfg, client.Options{Scheme: operator.Scheme()}); err != nil {
		t.Fatal(err)
	}
	b.createNamespace(operatorNamespace)
	b.manager = buildManager(t, root, outDir)

	var ops []operatorRun
	var floors []floorRun
	var ratios []float64
	for k := 1; k <= pairs; k++ {
		var op operatorRun
		var fl floorRun
		// The first pair runs the operator first: the API floor repeats the writes it counts.
		if k%2 == 1 {
			op = b.operatorRun(k)
			fl = b.floorRun(k)
		} else {
			fl = b.floorRun(k)
			op = b.operatorRun(k)
		}
		ratio := op.elapsed.Seconds() / math.Max(fl.store.Seconds(), fl.api.Seconds())
		logf("pair %d: operator %.2f s (p99 %.2f s), store floor %.2f s, API floor %.2f s: ratio %.2f", k,
			op.elapsed.Seconds(), percentile(op.latencies, 0.99), fl.store.Seconds(), fl.api.Seconds(), ratio)
		ops, floors, ratios = append(ops, op), append(floors, fl), append(ratios, ratio)
	}
	b.report(mode, ops, floors, ratios)
}

func benchPairs() (int, error) { return envCount("BENCH_PAIRS", 3, 1) }

func (b *requestsBench) createNamespace(ns string) {
	if err := b.c.Create(b.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.t.Fatal(err)
	}
}

// clear deletes what a run left in ns, outside the timed runs: the next manager would otherwise
// list and reconcile it, and etcd would grow from pair to pair. envtest runs no namespace
// controller, so the objects go kind by kind.
func (b *requestsBench) clear(ns string) {
	for _, obj := range []client.Object{&privacyv1alpha1.DeletionRequest{}, &privacyv1alpha1.DataStore{}, &corev1.Secret{}, &corev1.ConfigMap{}} {
		if err := b.c.DeleteAllOf(b.ctx, obj, client.InNamespace(ns)); err != nil {
			b.t.Fatalf("clearing %s: %v", ns, err)
		}
	}
}

// operatorRun is pair k's operator run: a manager of its own, the DataStores in namespace
// bench-k, and n requests for set b<k>.
func (b *requestsBench) operatorRun(k int) operatorRun {
	t, ctx, n := b.t, b.ctx, b.n
	t.Helper()
	ns, set := fmt.Sprintf("%s-%d", benchNamespace, k), fmt.Sprintf("b%d", k)
	diag := b.diag && k == 1
	b.createNamespace(ns)
	mgr := startManager(t, b.manager, b.outDir, fmt.Sprintf("manager-%d.log", k), b.env.KubeConfig, diag)
	createDataStores(t, ctx, b.c, b.st, ns)
	waitDataStoresReady(t, ctx, b.c, ns, len(specs(b.st.mode)))
	w := watchVerified(t, ctx, b.cfg, ns, "r", n)
	defer w.stop()
	time.Sleep(settle)

	apiBefore := parseProm(scrape(t, ctx, b.cfg))
	cpuBefore := sampleCPU(mgr.pid())
	var profiling sync.WaitGroup
	if diag {
		b.profile(&profiling, mgr)
	}
	b.logf("pair %d: creating %d DeletionRequests with their identifiers Secrets (%d in flight)", k, n, portalConcurrency)
	created := make([]time.Time, n)
	start := time.Now()
	createRequests(t, ctx, b.c, ns, set, n, created)
	if t.Failed() {
		t.FailNow()
	}
	run := operatorRun{createdIn: time.Since(start)}
	deadline := start.Add(time.Duration(n)*200*time.Millisecond + benchGrace())
	lastReport := time.Now()
	for w.done.Load() < int64(n) {
		if time.Now().After(deadline) {
			reportStuck(t, ctx, b.c, ns, n, w.done.Load(), mgr.logPath)
		}
		if time.Since(lastReport) >= 30*time.Second {
			b.logf("%d of %d Verified after %.0fs", w.done.Load(), n, time.Since(start).Seconds())
			lastReport = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	run.elapsed = time.Since(start)
	run.cpu = sampleCPU(mgr.pid()).since(cpuBefore)
	// Events are sent asynchronously after the status write that made a request Verified.
	time.Sleep(2 * time.Second)
	apiAfterRaw := scrape(t, ctx, b.cfg)
	var err error
	if run.rss, err = peakRSSMiB(mgr.pid()); err != nil {
		t.Fatal(err)
	}
	run.rssAnon, run.rssFile = rssMiB(mgr.pid())
	if diag {
		profiling.Wait()
		saveDiagnostics(t, ctx, mgr, b.outDir, n, apiAfterRaw, b.logf)
	}
	mgr.stop()
	w.stop()
	checkErased(t, ctx, b.st, set, n)
	run.template = b.checkVerified(ns)
	run.counts = operatorCounts(parseProm(apiAfterRaw), apiBefore, n)
	run.latencies = make([]float64, n)
	for i := range n {
		run.latencies[i] = w.verified[i].Sub(created[i]).Seconds()
	}
	sort.Float64s(run.latencies)
	b.printRun(k, run)
	if b.firstCounts == nil {
		b.firstCounts = run.counts
		fw := floorWritesFrom(run.counts, n)
		fw.templates(t, ctx, b.c, run.template)
		b.fw = &fw
	} else if got, want := floorWritesFrom(run.counts, n), floorWritesFrom(b.firstCounts, n); got.String() != want.String() {
		b.logf("pair %d: the operator wrote %s per request, the first run %s; the floors repeat the first", k, got, want)
	}
	b.clear(ns)
	return run
}

// profile saves CPU profiles of the manager and the API server while the run goes on.
func (b *requestsBench) profile(wg *sync.WaitGroup, mgr *managerProcess) {
	secs := profileSeconds()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := fetch(b.ctx, mgr.pprof, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(b.outDir, "cpu.pprof")); err != nil {
			b.logf("CPU profile: %v", err)
		}
	}()
	// The API server profiles itself too (--profiling defaults to true), for cluster admins.
	go func() {
		defer wg.Done()
		if err := apiServerProfile(b.ctx, b.cfg, secs, filepath.Join(b.outDir, "apiserver-cpu.pprof")); err != nil {
			b.logf("API server CPU profile: %v", err)
		}
	}()
}

// checkVerified checks every request's own record: Verified=True and a receipt. It returns one,
// whose status and receipt the API floor writes.
func (b *requestsBench) checkVerified(ns string) *privacyv1alpha1.DeletionRequest {
	var list privacyv1alpha1.DeletionRequestList
	if err := b.c.List(b.ctx, &list, client.InNamespace(ns)); err != nil {
		b.t.Fatal(err)
	}
	if len(list.Items) != b.n {
		b.t.Fatalf("%d requests listed, %d created", len(list.Items), b.n)
	}
	for i := range list.Items {
		dr := &list.Items[i]
		cond := meta.FindStatusCondition(dr.Status.Conditions, privacyv1alpha1.ConditionVerified)
		if cond == nil || cond.Status != metav1.ConditionTrue || dr.Status.Receipt == nil {
			b.t.Fatalf("%s: seen Verified, but its status is %+v", dr.Name, dr.Status)
		}
	}
	return &list.Items[0]
}

// operatorCounts are the operator's API requests between two scrapes. The API server counts
// requests by verb and resource, not by client. The harness's own writes in the window are
// exactly one Secret and one DeletionRequest per request; the informer and the metrics scrapes
// only read. The API server's own controllers touch leases (its identity lease, renewed every
// 10 s), services and endpoints, which the manager cannot: it runs without leader election and
// its ClusterRole does not name them. Everything else is the operator's.
func operatorCounts(after, before []sample, n int) apiCounts {
	delta := requestCounts(after).minus(requestCounts(before))
	harness := apiCounts{"POST secrets": float64(n), "POST deletionrequests": float64(n)}
	apiServersOwn := map[string]bool{"leases": true, "services": true, "endpoints": true, "endpointslices": true}
	out := apiCounts{}
	for k, v := range delta {
		if apiServersOwn[strings.Fields(k)[1]] {
			continue
		}
		if d := v - harness[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// floorRun is pair k's floors: the store floor on set a<k>, then the API floor in apifloor-k.
func (b *requestsBench) floorRun(k int) floorRun {
	t, ctx, n := b.t, b.ctx, b.n
	t.Helper()
	var run floorRun
	time.Sleep(settle)
	b.logf("pair %d: store floor: erase+verify of %d subjects x 3 stores by a plain Go program", k, n)
	cpu0 := sampleCPU(0)
	run.store = runStoreFloor(t, ctx, b.st, fmt.Sprintf("a%d", k), n)
	run.storeCPU = sampleCPU(0).since(cpu0)
	checkErased(t, ctx, b.st, fmt.Sprintf("a%d", k), n)
	b.logf("pair %d: store floor: %.2fs (CPU s: %s)", k, run.store.Seconds(), run.storeCPU)

	ns := fmt.Sprintf("%s-%d", floorNamespace, k)
	b.createNamespace(ns)
	time.Sleep(settle)
	b.logf("pair %d: API floor: %d Secrets and requests plus %s each, by a plain client", k, n, *b.fw)
	var profiling sync.WaitGroup
	if b.diag && k == 1 {
		profiling.Add(1)
		go func() {
			defer profiling.Done()
			if err := apiServerProfile(ctx, b.cfg, profileSeconds(), filepath.Join(b.outDir, "apiserver-floor-cpu.pprof")); err != nil {
				b.logf("API server CPU profile of the API floor: %v", err)
			}
		}()
	}
	cpu1 := sampleCPU(0)
	run.api = runAPIFloor(t, ctx, b.c, ns, n, *b.fw)
	run.apiCPU = sampleCPU(0).since(cpu1)
	profiling.Wait()
	b.logf("pair %d: API floor: %.2fs, kube-apiserver+etcd %.1f CPU s (%s)", k, run.api.Seconds(),
		run.apiCPU.groups["kube-apiserver"]+run.apiCPU.groups["etcd"], run.apiCPU)
	b.clear(ns)
	// Variants are for diagnosis at sizes where four more floors take a minute, not an hour.
	if b.diag && k == 1 && n <= 2000 {
		apiFloorVariants(t, ctx, b.c, n, *b.fw, b.firstCounts["GET secrets"], b.logf)
	}
	return run
}

// printRun prints what one operator run measured.
func (b *requestsBench) printRun(k int, r operatorRun) {
	n := b.n
	lat := r.latencies
	ops := r.counts.writes()
	fmt.Printf("\npair %d, operator: %d requests (3 stores each: PostgreSQL, MariaDB, Redis)\n", k, n)
	fmt.Printf("end to end          %.2f s, %.1f requests/s (created in %.2f s)\n", r.elapsed.Seconds(), float64(n)/r.elapsed.Seconds(), r.createdIn.Seconds())
	fmt.Printf("created->Verified   p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s (watched)\n",
		percentile(lat, 0.50), percentile(lat, 0.90), percentile(lat, 0.99), lat[n-1])
	fmt.Printf("API writes          %.0f by the operator, %.2f per request (the harness's own %d excluded)\n", ops, ops/float64(n), 2*n)
	fmt.Printf("API requests by the operator, per request:\n")
	for _, key := range r.counts.sortedKeys() {
		fmt.Printf("    %-48s %7.2f\n", key, r.counts[key]/float64(n))
	}
	fmt.Printf("manager peak RSS    %.1f MiB (at the end: %.1f MiB anonymous, %.1f MiB file pages, mostly its code)\n", r.rss, r.rssAnon, r.rssFile)
	fmt.Printf("CPU s, end to end   %s\n", r.cpu)
	fmt.Printf("CPU s per request   manager %.1f ms, kube-apiserver+etcd %.1f ms, databases %.1f ms\n\n",
		1000*r.cpu.groups["manager"]/float64(n), 1000*(r.cpu.groups["kube-apiserver"]+r.cpu.groups["etcd"])/float64(n),
		1000*(r.cpu.groups["postgres"]+r.cpu.groups["mariadb"]+r.cpu.groups["redis"])/float64(n))
}

// report prints the medians over the pairs and writes the summary line.
func (b *requestsBench) report(mode string, ops []operatorRun, floors []floorRun, ratios []float64) {
	n := b.n
	each := func(f func(operatorRun) float64) []float64 {
		out := make([]float64, len(ops))
		for i, r := range ops {
			out[i] = f(r)
		}
		return out
	}
	eachFloor := func(f func(floorRun) float64) []float64 {
		out := make([]float64, len(floors))
		for i, r := range floors {
			out[i] = f(r)
		}
		return out
	}
	elapsed, elapsedLow, elapsedHigh := medianSpread(each(func(r operatorRun) float64 { return r.elapsed.Seconds() }))
	p50, _, _ := medianSpread(each(func(r operatorRun) float64 { return percentile(r.latencies, 0.50) }))
	p99, p99Low, p99High := medianSpread(each(func(r operatorRun) float64 { return percentile(r.latencies, 0.99) }))
	perRequest, _, _ := medianSpread(each(func(r operatorRun) float64 { return r.counts.writes() / float64(n) }))
	_, _, rss := medianSpread(each(func(r operatorRun) float64 { return r.rss }))
	storeFloor, _, _ := medianSpread(eachFloor(func(r floorRun) float64 { return r.store.Seconds() }))
	apiFloor, apiLow, apiHigh := medianSpread(eachFloor(func(r floorRun) float64 { return r.api.Seconds() }))
	ratio, ratioLow, ratioHigh := medianSpread(ratios)
	cpuOf := func(u cpuUse, groups ...string) float64 {
		s := 0.0
		for _, g := range groups {
			s += u.groups[g]
		}
		return 1000 * s / float64(n)
	}
	managerCPU, _, _ := medianSpread(each(func(r operatorRun) float64 { return cpuOf(r.cpu, "manager") }))
	apiCPU, _, _ := medianSpread(each(func(r operatorRun) float64 { return cpuOf(r.cpu, "kube-apiserver", "etcd") }))
	dbCPU, _, _ := medianSpread(each(func(r operatorRun) float64 { return cpuOf(r.cpu, "postgres", "mariadb", "redis") }))
	floorCPU, _, _ := medianSpread(eachFloor(func(r floorRun) float64 { return cpuOf(r.apiCPU, "kube-apiserver", "etcd") }))

	fmt.Printf("\n%d pairs, medians (least-greatest)\n", len(ops))
	fmt.Printf("operator            %.2f s (%.2f-%.2f) for %d requests\n", elapsed, elapsedLow, elapsedHigh, n)
	fmt.Printf("created->Verified   p50 %.3f s, p99 %.3f s (%.3f-%.3f)\n", p50, p99, p99Low, p99High)
	fmt.Printf("floors              store %.2f s, API %.2f s (%.2f-%.2f)\n", storeFloor, apiFloor, apiLow, apiHigh)
	fmt.Printf("ratio               %.2f (%.2f-%.2f), median of the pairs' ratios to the larger floor\n", ratio, ratioLow, ratioHigh)
	fmt.Printf("CPU ms per request  manager %.1f, kube-apiserver+etcd %.1f (API floor %.1f), databases %.1f\n", managerCPU, apiCPU, floorCPU, dbCPU)
	writeSummary(b.t, fmt.Sprintf("bench: mode=%s requests=%d stores=3 pairs=%d seconds=%.2f throughput=%.2f p50=%.3f p99=%.3f p99_min=%.3f p99_max=%.3f api_writes_per_request=%.2f manager_peak_rss_mib=%.1f store_floor_seconds=%.2f api_floor_seconds=%.2f ratio_to_floor=%.2f ratio_min=%.2f ratio_max=%.2f\n",
		mode, n, len(ops), elapsed, float64(n)/elapsed, p50, p99, p99Low, p99High, perRequest, rss, storeFloor, apiFloor, ratio, ratioLow, ratioHigh))
}
