package controllers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/test/refservice"
)

func TestStoreDownAtFirstCompletesAfterRecovery(t *testing.T) {
	ctx := context.Background()
	pg, f, ns := storeDownAtFirst(t)
	create(t, secret(ns, "jane", subjectIDs))
	create(t, deletionRequest(ns, "outage", "jane"))
	dr := waitDR(t, ns, "outage", privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreUnavailable, settle)
	s := storeStatus(t, dr, "pg")
	if s.Phase != privacyv1alpha1.StoreRetrying || s.Attempts < 1 || s.NextAttemptAt == nil || s.Message == "" {
		t.Errorf("%+v", s)
	}
	if dr.Status.Phase == privacyv1alpha1.PhaseFailed {
		t.Error("a transient outage failed the request")
	}
	waitEvent(t, ns, "outage", privacyv1alpha1.ReasonStoreUnavailable, "DataStore pg")

	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	dr = waitDR(t, ns, "outage", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, 2*time.Minute)
	f.reopen(t)
	f.assertErased(t)
	s = storeStatus(t, dr, "pg")
	if s.Erased != 1 || s.Masked != 2 || s.Retained != 1 {
		t.Errorf("counts after recovery: %+v", s)
	}
	verifyReceipt(t, dr)
	// The recovery is an event, next to the warning of the outage.
	waitEvent(t, ns, "outage", privacyv1alpha1.ReasonVerified, "receipt")
}

// gate holds an http store's erasures until it is opened, so that a test can stop the manager
// while a request is mid-fan-out.
type gate struct {
	next    http.Handler
	mu      sync.Mutex
	open    bool
	waiting chan struct{}
	release chan struct{}
}

func newGate(next http.Handler) *gate {
	return &gate{next: next, waiting: make(chan struct{}, 100), release: make(chan struct{})}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/erase" {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			DryRun bool `json:"dryRun"`
		}
		_ = json.Unmarshal(body, &req)
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		if !req.DryRun && !open {
			g.waiting <- struct{}{}
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
		}
	}
	g.next.ServeHTTP(w, r)
}

func (g *gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		g.open = true
		close(g.release)
	}
}

func startRefService(t *testing.T, token string) (*refservice.Service, *gate, string) {
	t.Helper()
	svc := refservice.New(refservice.Options{Token: token})
	var recs []refservice.Record
	for _, ids := range []map[string]string{subjectIDs, bystanderIDs} {
		recs = append(recs, refservice.Record{Key: ids["userId"], Data: map[string]any{"email": ids["email"], "plan": "pro"}})
	}
	if err := svc.AddLocation(refservice.Location{Name: "crm.contacts", Match: map[string]string{"email": "email"}, Action: "delete", Records: recs}); err != nil {
		t.Fatal(err)
	}
	g := newGate(svc)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return svc, g, srv.URL
}

func httpDataStore(t *testing.T, ns, name, url, token string) {
	t.Helper()
	create(t, secret(ns, name+"-token", map[string]string{"token": token}))
	create(t, &privacyv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeHTTP, Connection: privacyv1alpha1.Connection{
			URL: url, SecretRef: &privacyv1alpha1.SecretKeySelector{Name: name + "-token", Key: "token"}, Timeout: &metav1.Duration{Duration: 5 * time.Second},
			// The test services are plain http:// on loopback.
			AllowInsecureHTTP: true},
			Description: "CRM processor", Purposes: []string{"Customer support"}},
	})
}

func TestManagerStoppedMidFanOutCompletesWithCorrectCounts(t *testing.T) {
	ns := newNamespace(t, nil)
	f := startPostgresFixture(t)
	f.dataStore(t, ns, "pg")
	svc, g, url := startRefService(t, "s3cret-token")
	httpDataStore(t, ns, "crm", url, "s3cret-token")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, deletionRequest(ns, "crash", "jane"))

	first := startOperator(t)
	// The http erase is held: the postgres erase has run or is running in the same fan-out.
	select {
	case <-g.waiting:
	case <-time.After(settle):
		t.Fatalf("the http store was never asked to erase: %s", storesString(getDR(t, ns, "crash")))
	}
	eventually(t, settle, func() (bool, string) {
		n := f.count(t, `SELECT COUNT(*) FROM customers WHERE email = $1`, subjectIDs["email"])
		return n == 0, "postgres not erased yet"
	})
	first.Stop()
	dr := getDR(t, ns, "crash")
	if dr.Status.Phase == privacyv1alpha1.PhaseCompleted {
		t.Fatal("completed before the crash; the test proves nothing")
	}

	g.Open()
	startOperator(t)
	dr = waitDR(t, ns, "crash", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	if s := storeStatus(t, dr, "pg"); s.Erased != 1 || s.Masked != 2 || s.Retained != 1 {
		t.Errorf("postgres counts after restart: %+v", s)
	}
	if s := storeStatus(t, dr, "crm"); s.Erased != 1 || s.Remaining != 0 {
		t.Errorf("http counts after restart: %+v", s)
	}
	if st := svc.Stats(); st.Erasures != 1 {
		t.Errorf("the processor erased %d times", st.Erasures)
	}
	f.assertErased(t)
	verifyReceipt(t, dr)
}

func TestNamespaceIsolation(t *testing.T) {
	startOperator(t)
	nsA := newNamespace(t, map[string]string{"team": "a"})
	nsB := newNamespace(t, map[string]string{"team": "b"})
	inB := startSQLiteFixture(t)
	inB.dataStore(t, nsB, "b-store")
	// A ClusterDataStore that admits only team b.
	forB := startSQLiteFixture(t)
	create(t, secret(operatorNamespace, "cluster-b-conn", map[string]string{"dsn": forB.dsn}))
	createClusterScoped(t, &privacyv1alpha1.ClusterDataStore{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-b-" + nsB},
		Spec: privacyv1alpha1.ClusterDataStoreSpec{DataStoreSpec: forB.spec("cluster-b-conn"),
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}},
	})
	// A ClusterDataStore that admits team a, and one store of its own.
	forA := startSQLiteFixture(t)
	create(t, secret(operatorNamespace, "cluster-a-conn", map[string]string{"dsn": forA.dsn}))
	createClusterScoped(t, &privacyv1alpha1.ClusterDataStore{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-a-" + nsA},
		Spec: privacyv1alpha1.ClusterDataStoreSpec{DataStoreSpec: forA.spec("cluster-a-conn"),
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}},
	})
	own := startSQLiteFixture(t)
	own.dataStore(t, nsA, "a-store")

	create(t, secret(nsA, "jane", subjectIDs))
	create(t, deletionRequest(nsA, "erase", "jane"))
	dr := waitDR(t, nsA, "erase", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	if len(dr.Status.Stores) != 2 {
		t.Fatalf("stores: %s", storesString(dr))
	}
	storeStatus(t, dr, "a-store")
	storeStatus(t, dr, "cluster-a-"+nsA)
	own.assertErased(t)
	forA.assertErased(t)
	for _, untouched := range []*sqlFixture{inB, forB} {
		if n := untouched.count(t, `SELECT COUNT(*) FROM customers WHERE email = ?`, subjectIDs["email"]); n != 1 {
			t.Errorf("a store of another namespace was touched: %d rows left", n)
		}
	}

	// A request in a namespace with no store of its own and no admitting ClusterDataStore.
	nsC := newNamespace(t, nil)
	create(t, secret(nsC, "jane", subjectIDs))
	create(t, deletionRequest(nsC, "erase", "jane"))
	waitDR(t, nsC, "erase", privacyv1alpha1.ConditionAccepted, metav1.ConditionFalse, privacyv1alpha1.ReasonNoStores, settle)

	// storeSelector narrows the stores further.
	nsD := newNamespace(t, map[string]string{"team": "d"})
	d1, d2 := startSQLiteFixture(t), startSQLiteFixture(t)
	ds1 := d1.dataStore(t, nsD, "picked")
	_ = ds1
	d2.dataStore(t, nsD, "skipped")
	patchLabels(t, nsD, "picked", map[string]string{"tier": "gold"})
	create(t, secret(nsD, "jane", subjectIDs))
	create(t, deletionRequest(nsD, "narrow", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.StoreSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}
	}))
	dr = waitDR(t, nsD, "narrow", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	if len(dr.Status.Stores) != 1 || dr.Status.Stores[0].Name != "picked" {
		t.Errorf("storeSelector: %s", storesString(dr))
	}
	if n := d2.count(t, `SELECT COUNT(*) FROM customers WHERE email = ?`, subjectIDs["email"]); n != 1 {
		t.Error("a store outside storeSelector was touched")
	}
}

func patchLabels(t *testing.T, ns, name string, labels map[string]string) {
	t.Helper()
	ds := &privacyv1alpha1.DataStore{}
	ctx := context.Background()
	if err := env.Client.Get(ctx, keyOf(ns, name), ds); err != nil {
		t.Fatal(err)
	}
	before := ds.DeepCopy()
	ds.Labels = labels
	if err := env.Client.Patch(ctx, ds, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

func TestDeadlineExceededWhileStoreIsDown(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	create(t, secret(ns, "down-conn", map[string]string{"dsn": "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "down"},
		Spec: startSQLiteFixtureSpecFor(privacyv1alpha1.StoreTypePostgres, "down-conn")})
	create(t, secret(ns, "jane", subjectIDs))
	// The person asked 16 days ago under LGPD (15 days): the deadline passes while the store is down.
	create(t, deletionRequest(ns, "late", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Regulation = privacyv1alpha1.RegulationLGPD
		dr.Spec.ReceivedAt = &metav1.Time{Time: time.Now().Add(-16 * 24 * time.Hour)}
	}))
	dr := waitDR(t, ns, "late", privacyv1alpha1.ConditionDeadlineExceeded, metav1.ConditionTrue, privacyv1alpha1.ReasonDeadlineExceeded, settle)
	if dr.Status.Phase == privacyv1alpha1.PhaseCompleted {
		t.Error("completed with the store down")
	}
	if want := dr.Spec.ReceivedAt.Add(15 * 24 * time.Hour).UTC().Truncate(time.Second); !dr.Status.Deadline.Time.Equal(want) {
		t.Errorf("deadline %v, want %v", dr.Status.Deadline, want)
	}
	waitEvent(t, ns, "late", privacyv1alpha1.ReasonDeadlineExceeded, "deadline")

	// The same request received just now is within its deadline.
	create(t, secret(ns, "jane2", subjectIDs))
	create(t, deletionRequest(ns, "fresh", "jane2"))
	dr = waitDR(t, ns, "fresh", privacyv1alpha1.ConditionDeadlineExceeded, metav1.ConditionFalse, privacyv1alpha1.ReasonWithinDeadline, settle)
	if d := dr.Status.Deadline.Sub(dr.CreationTimestamp.Time); d < 28*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("GDPR deadline %v after creation", d)
	}
}

func startSQLiteFixtureSpecFor(typ privacyv1alpha1.StoreType, secretName string) privacyv1alpha1.DataStoreSpec {
	f := &sqlFixture{storeType: typ}
	return f.spec(secretName)
}
