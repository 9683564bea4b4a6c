package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// people makes n subjects (or bystanders) whose identifiers no other test uses.
func people(prefix string, n int) []person {
	out := make([]person, n)
	for i := range out {
		out[i] = person{email: fmt.Sprintf("%s-%02d@shop.example", prefix, i), userID: fmt.Sprintf("%s-user-%02d", prefix, i)}
	}
	return out
}

// setUpShops seeds the subjects and bystanders into every shop, creates a DataStore per shop and
// an identifiers Secret per subject, and returns the request names in subject order.
func setUpShops(t *testing.T, c client.Client, ns string, shops map[string]*shop, subjects, bystanders []person, timeout time.Duration) []string {
	t.Helper()
	for name, s := range shops {
		for _, p := range subjects {
			s.seed(t, p)
		}
		for _, p := range bystanders {
			s.seed(t, p)
		}
		s.dataStore(t, c, ns, name, timeout)
	}
	names := make([]string, len(subjects))
	for i, p := range subjects {
		names[i] = fmt.Sprintf("erase-%02d", i)
		create(t, c, secret(ns, fmt.Sprintf("subject-%02d", i), p.ids()))
	}
	return names
}

func createRequests(t *testing.T, c client.Client, ns string, names []string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		create(t, c, deletionRequest(ns, names[i], fmt.Sprintf("subject-%02d", i)))
	}
}

// assertOutcome checks that every request erased, masked and retained exactly what was seeded for
// its subject in every shop, that its receipt verifies and says the same, and that the shops hold
// nothing of the subjects and everything of the bystanders.
func assertOutcome(t *testing.T, c client.Client, drs map[string]*privacyv1alpha1.DeletionRequest, shops map[string]*shop, subjects, bystanders []person) {
	t.Helper()
	for _, dr := range drs {
		if len(dr.Status.Stores) != len(shops) {
			t.Errorf("%s: %d stores in status, want %d: %s", dr.Name, len(dr.Status.Stores), len(shops), describe(dr))
		}
		for name := range shops {
			s := storeStatus(t, dr, name)
			if s.Phase != privacyv1alpha1.StoreVerified || s.Erased != wantErased || s.Masked != wantMasked || s.Retained != wantRetained || s.Remaining != 0 {
				t.Errorf("%s: store %s: phase %s erased %d masked %d retained %d remaining %d, want Verified %d/%d/%d/0",
					dr.Name, name, s.Phase, s.Erased, s.Masked, s.Retained, s.Remaining, wantErased, wantMasked, wantRetained)
			}
			if len(s.RetainedReasons) != 1 || s.RetainedReasons[0].Records != wantRetained || !strings.Contains(s.RetainedReasons[0].Reason, "tax law") {
				t.Errorf("%s: store %s: retained reasons %+v", dr.Name, name, s.RetainedReasons)
			}
		}
		verifyReceipt(t, c, dr)
	}
	for _, s := range shops {
		for _, p := range subjects {
			s.assertErased(t, p)
		}
		for _, p := range bystanders {
			s.assertIntact(t, p)
		}
	}
}

func listDRs(t *testing.T, c client.Client, ns string) []privacyv1alpha1.DeletionRequest {
	t.Helper()
	var list privacyv1alpha1.DeletionRequestList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func phases(drs []privacyv1alpha1.DeletionRequest) string {
	count := map[string]int{}
	for _, dr := range drs {
		p := string(dr.Status.Phase)
		if p == "" {
			p = "<not accepted>"
		}
		count[p]++
	}
	var parts []string
	for p, n := range count {
		parts = append(parts, fmt.Sprintf("%s=%d", p, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func TestSIGKILLedManagerFinishesEveryRequestWithRightCounts(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	ctx := context.Background()
	ns := newNamespace(t, env.Client, nil)
	pgDSN, err := teststore.SharedPostgres(t).CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	mariaDSN, err := teststore.SharedMariaDB(t).CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	shops := map[string]*shop{
		"pg":    openShop(t, privacyv1alpha1.StoreTypePostgres, pgDSN),
		"maria": openShop(t, privacyv1alpha1.StoreTypeMySQL, mariaDSN),
		"lite":  sqliteShop(t),
	}
	subjects, bystanders := people("kill", 30), people("kill-bystander", 3)
	// A long timeout: the erasures must wait on the locks, not time out.
	names := setUpShops(t, env.Client, ns, shops, subjects, bystanders, 2*time.Minute)
	releasePG, releaseMaria := holdOrders(t, shops["pg"]), holdOrders(t, shops["maria"])

	first := startManager(t, "first", managerOptions{})
	createRequests(t, env.Client, ns, names, 0, len(names))

	// Mid-flight: erase transactions wait inside both databases on the held locks.
	eventually(t, settle, func() (bool, string) {
		pgWait, mariaWait := waitingOnLocks(t, shops["pg"]), waitingOnLocks(t, shops["maria"])
		drs := listDRs(t, env.Client, ns)
		return pgWait >= 2 && mariaWait >= 2, fmt.Sprintf("erasures waiting: postgres %d, mariadb %d; requests %s", pgWait, mariaWait, phases(drs))
	})
	before := listDRs(t, env.Client, ns)
	first.Kill()
	t.Logf("SIGKILLed the manager with requests %s", phases(before))

	// The crash window: SQLite committed erasures that no status records yet.
	unrecorded := 0
	for _, dr := range before {
		if completed(&dr) {
			t.Fatalf("%s completed although its erasures were held: the test proves nothing", dr.Name)
		}
		var i int
		if _, err := fmt.Sscanf(dr.Name, "erase-%d", &i); err != nil {
			t.Fatal(err)
		}
		gone := shops["lite"].count(t, `SELECT COUNT(*) FROM customers WHERE email = ?`, subjects[i].email) == 0
		for _, s := range dr.Status.Stores {
			if s.Name == "lite" && s.Phase != privacyv1alpha1.StoreVerified && gone {
				unrecorded++
			}
		}
	}
	t.Logf("%d requests had SQLite erased without their status saying so", unrecorded)

	releasePG()
	releaseMaria()
	second := startManager(t, "second", managerOptions{})
	drs := waitAllCompleted(t, env.Client, ns, names, 2*settle)
	assertOutcome(t, env.Client, drs, shops, subjects, bystanders)
	assertNoLeaks(t, env.Client, ns, []*manager{first, second}, subjects)
}

func TestDatabaseOutageMidRunIsRetriedNeverFailed(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	ctx := context.Background()
	// Servers of its own: stopping the shared ones would break other tests.
	pg, err := teststore.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	maria, err := teststore.StartMariaDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = maria.Close() })
	pgDSN, err := pg.CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	mariaDSN, err := maria.CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, env.Client, nil)
	shops := map[string]*shop{
		"pg":    openShop(t, privacyv1alpha1.StoreTypePostgres, pgDSN),
		"maria": openShop(t, privacyv1alpha1.StoreTypeMySQL, mariaDSN),
	}
	subjects, bystanders := people("outage", 12), people("outage-bystander", 2)
	names := setUpShops(t, env.Client, ns, shops, subjects, bystanders, 5*time.Second)
	holdOrders(t, shops["pg"])
	holdOrders(t, shops["maria"])

	m := startManager(t, "manager", managerOptions{})
	createRequests(t, env.Client, ns, names, 0, len(names))
	eventually(t, settle, func() (bool, string) {
		pgWait, mariaWait := waitingOnLocks(t, shops["pg"]), waitingOnLocks(t, shops["maria"])
		return pgWait >= 1 && mariaWait >= 1, fmt.Sprintf("erasures waiting: postgres %d, mariadb %d", pgWait, mariaWait)
	})

	// Both databases go down with erase transactions open (the held locks go with them).
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := maria.Stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()

	// neverFailed is checked on every poll from here on: an outage shorter than the retry budget
	// (transient failures are retried with backoff without end) must never fail a store.
	failures := map[string]bool{}
	neverFailed := func(drs []privacyv1alpha1.DeletionRequest) {
		for _, dr := range drs {
			if dr.Status.Phase == privacyv1alpha1.PhaseFailed {
				failures[dr.Name+" phase Failed: "+describe(&dr)] = true
			}
			for _, s := range dr.Status.Stores {
				if s.Phase == privacyv1alpha1.StoreFailed {
					failures[fmt.Sprintf("%s store %s Failed: %s", dr.Name, s.Name, s.Message)] = true
				}
			}
		}
	}
	// The stores are seen to retry with backoff: some store was tried at least twice while down.
	eventually(t, settle, func() (bool, string) {
		drs := listDRs(t, env.Client, ns)
		neverFailed(drs)
		maxAttempts, retrying := int32(0), 0
		for _, dr := range drs {
			for _, s := range dr.Status.Stores {
				if s.Phase == privacyv1alpha1.StoreRetrying {
					retrying++
					if s.NextAttemptAt == nil || s.Message == "" {
						t.Errorf("%s store %s is Retrying without nextAttemptAt or message: %+v", dr.Name, s.Name, s)
					}
				}
				maxAttempts = max(maxAttempts, s.Attempts)
			}
		}
		return retrying > 0 && maxAttempts >= 2, fmt.Sprintf("%d stores retrying, at most %d attempts; %s", retrying, maxAttempts, phases(drs))
	})
	t.Logf("databases down for %s", time.Since(down).Round(time.Second))
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := maria.Start(ctx); err != nil {
		t.Fatal(err)
	}

	eventually(t, 2*settle, func() (bool, string) {
		drs := listDRs(t, env.Client, ns)
		neverFailed(drs)
		done := 0
		for i := range drs {
			if completed(&drs[i]) {
				done++
			}
		}
		return done == len(names), fmt.Sprintf("%d of %d completed: %s", done, len(names), phases(drs))
	})
	for f := range failures {
		t.Errorf("failed during a short outage: %s", f)
	}
	drs := waitAllCompleted(t, env.Client, ns, names, settle)
	// The shops' own connections died with the servers.
	for _, s := range shops {
		reopen(t, s)
	}
	assertOutcome(t, env.Client, drs, shops, subjects, bystanders)
	var evs corev1.EventList
	if err := env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.Reason == privacyv1alpha1.ReasonStoreFailed {
			t.Errorf("event %s on %s: %s", e.Reason, e.InvolvedObject.Name, e.Message)
		}
	}
	assertNoLeaks(t, env.Client, ns, []*manager{m}, subjects)
}

func reopen(t *testing.T, s *shop) {
	t.Helper()
	db, err := sql.Open(s.driver, s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	_ = s.db.Close()
	s.db = db
}

const leaseName = "dsr-operator.privacy.dsr.dev"

func leaseHolder(t *testing.T) string {
	t.Helper()
	var lease coordinationv1.Lease
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: leaseName}, &lease); err != nil {
		return ""
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// isLeader tells from a replica's log whether it won the election: controller-runtime starts the
// controllers ("Starting workers") only in the leader.
func isLeader(m *manager) bool {
	log := strings.ToLower(m.Log())
	return strings.Contains(log, "successfully acquired lease") && strings.Contains(log, "starting workers")
}

func TestLeaderKilledStandbyTakesOver(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	ctx := context.Background()
	ns := newNamespace(t, env.Client, nil)
	pgDSN, err := teststore.SharedPostgres(t).CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	shops := map[string]*shop{"pg": openShop(t, privacyv1alpha1.StoreTypePostgres, pgDSN), "lite": sqliteShop(t)}
	subjects, bystanders := people("leader", 12), people("leader-bystander", 2)
	names := setUpShops(t, env.Client, ns, shops, subjects, bystanders, 10*time.Second)

	a := startManager(t, "replica-a", managerOptions{leaderElect: true})
	b := startManager(t, "replica-b", managerOptions{leaderElect: true})
	var leader, standby *manager
	eventually(t, settle, func() (bool, string) {
		switch {
		case isLeader(a) && !isLeader(b):
			leader, standby = a, b
		case isLeader(b) && !isLeader(a):
			leader, standby = b, a
		case isLeader(a) && isLeader(b):
			t.Fatal("both replicas lead at once")
		}
		return leader != nil && leaseHolder(t) != "", fmt.Sprintf("no leader yet; lease holder %q", leaseHolder(t))
	})
	before := leaseHolder(t)

	// The leader works; the standby does not.
	createRequests(t, env.Client, ns, names, 0, 4)
	drs := waitAllCompleted(t, env.Client, ns, names[:4], settle)
	if isLeader(standby) {
		t.Fatal("the standby started its controllers while the leader was alive")
	}

	leader.Kill()
	// Requests made after the leader died: only the standby can finish them. It must first wait
	// out the lease (15s) that the killed leader could not release.
	createRequests(t, env.Client, ns, names, 4, len(names))
	eventually(t, 2*settle, func() (bool, string) {
		h := leaseHolder(t)
		return h != "" && h != before && isLeader(standby), fmt.Sprintf("lease holder %q (was %q); standby leads: %v", h, before, isLeader(standby))
	})
	for name, dr := range waitAllCompleted(t, env.Client, ns, names[4:], 2*settle) {
		drs[name] = dr
	}
	if !standby.Running() {
		t.Fatal("the new leader exited")
	}
	assertOutcome(t, env.Client, drs, shops, subjects, bystanders)
	assertNoLeaks(t, env.Client, ns, []*manager{a, b}, subjects)
}
