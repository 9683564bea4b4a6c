package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

// The linked mode: one subject with many linked rows (BENCH_LINKED_ROWS, default 10,000, in each
// SQL store) erased and verified by the operator, against a plain Go program that deletes the
// same rows in one transaction per store with the same drivers. Floor and operator alternate,
// BENCH_PAIRS (3) times each, the order swapped every pair (floor first, then operator
// first), each after a pause that lets the databases settle from the step before: both see the
// same machine, and neither always follows the other's deletes. Sets: "a1".. for the floor, "b1"..
// for the operator, "c" for the connector alone (a diagnosis of where the operator's time goes);
// "xa" is a bystander of the same size and "xb" a thousand small ones, which must stay whole.

func linkedRows() (int, error) { return envCount("BENCH_LINKED_ROWS", 10000, 10) }

// envCount is the number in the environment variable name, def when it is unset; below least
// it is refused.
func envCount(name string, def, least int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		return 0, fmt.Errorf("%s=%q: want a number of at least %d", name, v, least)
	}
	return n, nil
}

// linkedSettle is the pause before each timed step of the linked mode: InnoDB purges the
// deleted rows' index entries in the background after a commit, and autovacuum may start.
const linkedSettle = time.Second

func runLinked(t *testing.T, ctx context.Context, st *stores, root, outDir string, diag bool, logf func(string, ...any)) {
	t.Helper()
	rows, err := linkedRows()
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := benchPairs()
	if err != nil {
		t.Fatal(err)
	}
	sh := shapeOf(rows)
	storesOnly := os.Getenv("BENCH_LINKED_STORES_ONLY") != "" && os.Getenv("BENCH_LINKED_STORES_ONLY") != "0"
	sets := []string{"c", "xa"}
	for k := 1; k <= pairs; k++ {
		sets = append(sets, fmt.Sprintf("a%d", k), fmt.Sprintf("b%d", k))
	}
	if storesOnly {
		sets = []string{"a1", "c1", "a2", "c2", "a3", "c3", "xa"}
	}
	logf("seeding: per SQL store, %d customers of %d rows (%d orders, %d order items, %d logins), one a bystander, and 1000 small bystanders",
		len(sets), sh.rows(), sh.orders, sh.orders*sh.itemsPerOrder, sh.logins)
	for _, set := range sets {
		st.linked.seedLinked(t, ctx, st, set, 1, sh)
	}
	st.linked.seedLinked(t, ctx, st, "xb", 1000, shape{orders: 1, itemsPerOrder: 2, logins: 1})
	bystanders := []string{"xa", "xb"}
	analyze(t, ctx, st.pg, true)
	analyze(t, ctx, st.my, false)
	if storesOnly {
		runLinkedStoresOnly(t, ctx, st, sh, bystanders, logf)
		return
	}

	logf("connector alone: derive, plan, erase, verify with the manager's clients, no Kubernetes")
	phases := runLinkedConnector(t, ctx, st, "c", int64(sh.rows()))
	st.linked.checkLinkedErased(t, ctx, st, "c", bystanders...)
	logf("connector alone: %s", phases)

	logf("starting the control plane")
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	cfg := rest.CopyConfig(env.Config)
	c, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{operatorNamespace, benchNamespace} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	mgr := startManager(t, buildManager(t, root, outDir), outDir, "manager.log", env.KubeConfig, diag)
	createDataStores(t, ctx, c, st, benchNamespace)
	waitDataStoresReady(t, ctx, c, benchNamespace, len(specs(st.mode)))
	w := watchVerified(t, ctx, cfg, benchNamespace, "r", pairs)
	defer w.stop()
	var profiling sync.WaitGroup
	if diag {
		profiling.Add(1)
		go func() {
			defer profiling.Done()
			if err := fetch(ctx, mgr.pprof, fmt.Sprintf("/debug/pprof/profile?seconds=%d", profileSeconds()), filepath.Join(outDir, "cpu.pprof")); err != nil {
				logf("CPU profile: %v", err)
			}
		}()
	}

	logf("%d pairs: the floor and the operator (one DeletionRequest for a subject with %d rows in each SQL store), alternately", pairs, sh.rows())
	var floors, operators, ratios []float64
	for k := 0; k < pairs; k++ {
		var floor, operated time.Duration
		runFloor := func() {
			time.Sleep(linkedSettle)
			before := threadTime(0)
			var perStore map[string]time.Duration
			floor, perStore = runLinkedFloor(t, ctx, st, fmt.Sprintf("a%d", k+1))
			logf("pair %d: floor %.3f s (postgres %.3f s, mariadb %.3f s, concurrently); run time %s", k+1, floor.Seconds(),
				perStore["pg"].Seconds(), perStore["my"].Seconds(), threadTimeSince(before, threadTime(0)))
		}
		runOperator := func() {
			time.Sleep(linkedSettle)
			before := threadTime(mgr.pid())
			operated = runLinkedRequest(t, ctx, c, w, k, fmt.Sprintf("b%d", k+1), mgr.logPath)
			logf("pair %d: operator %.3f s from create to Verified; run time %s", k+1, operated.Seconds(),
				threadTimeSince(before, threadTime(mgr.pid())))
		}
		if k%2 == 0 {
			runFloor()
			runOperator()
		} else {
			runOperator()
			runFloor()
		}
		floors = append(floors, floor.Seconds())
		operators = append(operators, operated.Seconds())
		ratios = append(ratios, operated.Seconds()/floor.Seconds())
	}
	rss, err := peakRSSMiB(mgr.pid())
	if err != nil {
		t.Fatal(err)
	}
	profiling.Wait()
	mgr.stop()
	for k := 1; k <= pairs; k++ {
		st.linked.checkLinkedErased(t, ctx, st, fmt.Sprintf("a%d", k), bystanders...)
		st.linked.checkLinkedErased(t, ctx, st, fmt.Sprintf("b%d", k), bystanders...)
	}
	for k := 0; k < pairs; k++ {
		checkLinkedStatus(t, ctx, c, requestName("r", k), int64(sh.rows()))
	}

	ratio, ratioLow, ratioHigh := medianSpread(ratios)
	floorMedian, floorLow, floorHigh := medianSpread(floors)
	operatorMedian, operatorLow, operatorHigh := medianSpread(operators)
	fmt.Printf("\nlinked rows         %d per SQL store (PostgreSQL, MariaDB): %d customer, %d orders, %d order items, %d logins\n",
		sh.rows(), 1, sh.orders, sh.orders*sh.itemsPerOrder, sh.logins)
	fmt.Printf("operator            %.3f s (%.3f-%.3f) from create to Verified, median of %d\n", operatorMedian, operatorLow, operatorHigh, pairs)
	fmt.Printf("floor               %.3f s (%.3f-%.3f), both stores concurrently, median of %d\n", floorMedian, floorLow, floorHigh, pairs)
	fmt.Printf("ratio               %.2f (%.2f-%.2f), median of the %d pairs' ratios\n", ratio, ratioLow, ratioHigh, pairs)
	fmt.Printf("connector alone     %s\n", phases)
	fmt.Printf("manager             peak RSS %.1f MiB\n", rss)
	summary := fmt.Sprintf("bench: mode=linked rows=%d stores=2 pairs=%d seconds=%.3f floor_seconds=%.3f connector_seconds=%.3f manager_peak_rss_mib=%.1f ratio_to_floor=%.2f ratio_min=%.2f ratio_max=%.2f\n",
		sh.rows(), pairs, operatorMedian, floorMedian, phases.total().Seconds(), rss, ratio, ratioLow, ratioHigh)
	writeSummary(t, summary)
}

// runLinkedRequest creates the k-th DeletionRequest, for set's subject, and returns the time from
// its create to the harness seeing it Verified.
func runLinkedRequest(t *testing.T, ctx context.Context, c client.Client, w *verifiedWatch, k int, set, logPath string) time.Duration {
	t.Helper()
	name := requestName("r", k)
	ids := map[string]string{"email": subjectID(set, 0) + "@example.com"}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: name, Labels: identifiersLabel}, StringData: ids}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Create(ctx, deletionRequest(benchNamespace, name)); err != nil {
		t.Fatal(err)
	}
	for w.done.Load() < int64(k+1) {
		if time.Since(start) > benchGrace() {
			reportStuck(t, ctx, c, benchNamespace, k+1, w.done.Load(), logPath)
		}
		time.Sleep(time.Millisecond)
	}
	return w.verified[k].Sub(start)
}

// checkLinkedStatus fails unless the request's status reports every row of both stores erased,
// none remaining, and a receipt.
func checkLinkedStatus(t *testing.T, ctx context.Context, c client.Client, name string, rows int64) {
	t.Helper()
	var dr privacyv1alpha1.DeletionRequest
	if err := c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: name}, &dr); err != nil {
		t.Fatal(err)
	}
	if dr.Status.Receipt == nil || len(dr.Status.Stores) != 2 {
		t.Fatalf("%s is Verified, but its status is %+v", name, dr.Status)
	}
	for _, s := range dr.Status.Stores {
		if s.Erased != rows || s.Remaining != 0 {
			t.Fatalf("%s, store %s: erased %d, remaining %d; the subject had %d rows there", name, s.Name, s.Erased, s.Remaining, rows)
		}
	}
}

// medianSpread is the median of xs and their least and greatest.
func medianSpread(xs []float64) (median, low, high float64) {
	sorted := slices.Clone(xs)
	sort.Float64s(sorted)
	n := len(sorted)
	median = sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return median, sorted[0], sorted[n-1]
}

// runLinkedStoresOnly measures the floor and the connector alone three times each, interleaved,
// without Kubernetes: what the store work of the operator costs against the floor.
func runLinkedStoresOnly(t *testing.T, ctx context.Context, st *stores, sh shape, bystanders []string, logf func(string, ...any)) {
	t.Helper()
	var floors, connectors []float64
	for round := 1; round <= 3; round++ {
		floorSet, connectorSet := fmt.Sprintf("a%d", round), fmt.Sprintf("c%d", round)
		floor, perStore := runLinkedFloor(t, ctx, st, floorSet)
		st.linked.checkLinkedErased(t, ctx, st, floorSet, bystanders...)
		phases := runLinkedConnector(t, ctx, st, connectorSet, int64(sh.rows()))
		st.linked.checkLinkedErased(t, ctx, st, connectorSet, bystanders...)
		logf("round %d: floor %.3f s (postgres %.3f s, mariadb %.3f s); connector alone %s", round, floor.Seconds(),
			perStore["pg"].Seconds(), perStore["my"].Seconds(), phases)
		floors = append(floors, floor.Seconds())
		connectors = append(connectors, phases.total().Seconds())
	}
	sort.Float64s(floors)
	sort.Float64s(connectors)
	writeSummary(t, fmt.Sprintf("bench: mode=linked-stores rows=%d stores=2 floor_seconds=%.3f(%.3f-%.3f) connector_seconds=%.3f(%.3f-%.3f) ratio_connector_to_floor=%.2f\n",
		sh.rows(), floors[1], floors[0], floors[2], connectors[1], connectors[0], connectors[2], connectors[1]/floors[1]))
}

// analyze refreshes the planner's statistics after seeding, as any database that has been in use
// for a while has them.
func analyze(t *testing.T, ctx context.Context, db *sql.DB, pg bool) {
	t.Helper()
	for _, tb := range []string{"customers", "orders", "order_item", "login"} {
		q := "ANALYZE TABLE " + tb
		if pg {
			q = "ANALYZE " + tb
		}
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// runLinkedFloor deletes set's subject in both SQL stores at once, each in one transaction, the
// way a hand-written program would: read the subject's customer and order ids, delete children
// before parents, commit, then verify that nothing of the subject is left.
func runLinkedFloor(t *testing.T, ctx context.Context, st *stores, set string) (time.Duration, map[string]time.Duration) {
	t.Helper()
	email := subjectID(set, 0) + "@example.com"
	var mu sync.Mutex
	perStore := map[string]time.Duration{}
	var wg sync.WaitGroup
	start := time.Now()
	for name, db := range map[string]*sql.DB{"pg": st.pg, "my": st.my} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			if err := floorErase(ctx, db, name == "pg", email); err != nil {
				t.Errorf("floor %s: %v", name, err)
			}
			mu.Lock()
			perStore[name] = time.Since(began)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return time.Since(start), perStore
}

func floorErase(ctx context.Context, db *sql.DB, pg bool, email string) error {
	marks := func(n int) string {
		m := make([]string, n)
		for i := range m {
			if pg {
				m[i] = "$" + strconv.Itoa(i+1)
			} else {
				m[i] = "?"
			}
		}
		return strings.Join(m, ", ")
	}
	one := marks(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var customer string
	if err := tx.QueryRowContext(ctx, "SELECT id FROM customers WHERE email = "+one, email).Scan(&customer); err != nil {
		return err
	}
	orders, err := queryIDs(ctx, tx, "SELECT id FROM orders WHERE customer_id = "+one, customer)
	if err != nil {
		return err
	}
	for _, q := range []string{
		"DELETE FROM order_item WHERE order_id IN (SELECT id FROM orders WHERE customer_id = " + one + ")",
		"DELETE FROM login WHERE customer_id = " + one,
		"DELETE FROM orders WHERE customer_id = " + one,
		"DELETE FROM customers WHERE id = " + one,
	} {
		if _, err := tx.ExecContext(ctx, q, customer); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Verify: the order items by the order ids read before, the rest by the customer.
	args := make([]any, len(orders))
	for i, o := range orders {
		args[i] = o
	}
	var left, n int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM order_item WHERE order_id IN ("+marks(len(orders))+")", args...).Scan(&n); err != nil {
		return err
	}
	left += n
	for _, q := range []string{"SELECT COUNT(*) FROM orders WHERE customer_id = " + one, "SELECT COUNT(*) FROM login WHERE customer_id = " + one,
		"SELECT COUNT(*) FROM customers WHERE id = " + one} {
		if err := db.QueryRowContext(ctx, q, customer).Scan(&n); err != nil {
			return err
		}
		left += n
	}
	if left != 0 {
		return fmt.Errorf("%d rows left after the floor's erasure", left)
	}
	return nil
}

func queryIDs(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// connectorPhases is how long each step of the operator's store work took with the connector
// clients alone, in the operator's order: derive every store at once, counting the dry run as it
// derives, then erase (sized by that count) and verify every store at once. plan is a separate
// dry run, for a store whose derived values changed after it counted (none here).
type connectorPhases struct{ derive, plan, erase, verify time.Duration }

func (p connectorPhases) total() time.Duration { return p.derive + p.plan + p.erase + p.verify }

func (p connectorPhases) String() string {
	return fmt.Sprintf("%.3f s: derive %.3f s, plan %.3f s, erase %.3f s, verify %.3f s",
		p.total().Seconds(), p.derive.Seconds(), p.plan.Seconds(), p.erase.Seconds(), p.verify.Seconds())
}

func runLinkedConnector(t *testing.T, ctx context.Context, st *stores, set string, rows int64) connectorPhases {
	t.Helper()
	clients := floorClients(t, ctx, st)
	order := []string{"pg", "my"}
	req := connector.Request{ID: "connector", Identifiers: connector.Identifiers{"email": subjectID(set, 0) + "@example.com"}}
	// The manager's clients have checked their store (the DataStore controller does) before a
	// request uses them, which reads the catalog.
	for name, cl := range clients {
		if _, err := cl.Check(ctx); err != nil {
			t.Fatalf("check %s: %v", name, err)
		}
	}
	var p connectorPhases
	began := time.Now()
	type derived struct {
		d   *connector.Derivation
		err error
	}
	results := make([]derived, len(order))
	var wg sync.WaitGroup
	for k, name := range order {
		wg.Go(func() {
			r := req
			r.Plan = true
			d, err := clients[name].(connector.Deriver).Derive(ctx, r)
			results[k] = derived{d, err}
		})
	}
	wg.Wait()
	values, shared := connector.Values{}, connector.Values{}
	plans := map[string]*connector.EraseResult{}
	for k, name := range order {
		if results[k].err != nil {
			t.Fatal(results[k].err)
		}
		values.Merge(results[k].d.Values)
		shared.Merge(results[k].d.Shared)
		if results[k].d.Plan != nil {
			plans[name] = results[k].d.Plan.Result
		}
	}
	req.Values, req.Shared = values, shared
	p.derive = time.Since(began)
	each := func(fn func(string, connector.Client) error) time.Duration {
		began := time.Now()
		var wg sync.WaitGroup
		for _, name := range order {
			wg.Go(func() {
				if err := fn(name, clients[name]); err != nil {
					t.Errorf("connector %s: %v", name, err)
				}
			})
		}
		wg.Wait()
		return time.Since(began)
	}
	check := func(res *connector.EraseResult, err error) error {
		if err != nil {
			return err
		}
		if res.Erased != rows {
			return fmt.Errorf("erased %d of %d rows", res.Erased, rows)
		}
		return nil
	}
	var mu sync.Mutex
	p.plan = each(func(name string, cl connector.Client) error {
		mu.Lock()
		known := plans[name] != nil
		mu.Unlock()
		if known {
			return nil
		}
		dry := req
		dry.DryRun = true
		res, err := cl.Erase(ctx, dry)
		mu.Lock()
		plans[name] = res
		mu.Unlock()
		return check(res, err)
	})
	p.erase = each(func(name string, cl connector.Client) error {
		r := req
		mu.Lock()
		plan := plans[name]
		mu.Unlock()
		if plan == nil {
			return fmt.Errorf("no plan")
		}
		planned := plan.Erased + plan.Masked
		r.Planned = &planned
		return check(cl.Erase(ctx, r))
	})
	p.verify = each(func(_ string, cl connector.Client) error {
		v, err := cl.Verify(ctx, req)
		if err == nil && v.Remaining != 0 {
			err = fmt.Errorf("%d rows remaining", v.Remaining)
		}
		return err
	})
	if t.Failed() {
		t.FailNow()
	}
	return p
}
