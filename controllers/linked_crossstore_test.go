package controllers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// linkedProcessor is an http processor speaking protocol v1 with the additive "values" field:
// it knows people only by the CRM's customer id, which the operator derives from the SQL store.
// It records every customer id it was asked about, so a test can prove no bystander's id was
// ever sent.
type linkedProcessor struct {
	mu      sync.Mutex
	records map[string]int // customer id -> tickets
	asked   map[string]bool
}

func (p *linkedProcessor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer linked-token" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var body struct {
		Identifiers map[string]string   `json:"identifiers"`
		Values      map[string][]string `json:"values"`
		DryRun      bool                `json:"dryRun"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	ids := slices.Clone(body.Values["customerId"])
	if v := body.Identifiers["customerId"]; v != "" && !slices.Contains(ids, v) {
		ids = append(ids, v)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	held := int64(0)
	for _, id := range ids {
		p.asked[id] = true
		held += int64(p.records[id])
	}
	locs := []map[string]any{}
	if held > 0 {
		locs = append(locs, map[string]any{"location": "support.tickets", "records": held})
	}
	answer := map[string]any{"protocolVersion": "v1", "status": "done"}
	switch strings.TrimPrefix(r.URL.Path, "/v1/") {
	case "check":
		answer = map[string]any{"ok": true, "protocolVersion": "v1", "warnings": []string{}}
	case "erase":
		if !body.DryRun {
			for _, id := range ids {
				delete(p.records, id)
			}
		}
		answer["erased"], answer["masked"], answer["retained"], answer["retainedLocations"] = held, 0, 0, []any{}
	case "verify":
		answer["remaining"], answer["remainingLocations"], answer["retained"], answer["retainedLocations"] = held, locs, 0, []any{}
	case "collect":
		recs := []map[string]any{}
		for _, id := range ids {
			for i := 0; i < p.records[id]; i++ {
				recs = append(recs, map[string]any{"location": "support.tickets", "key": id, "data": map[string]any{"n": i}})
			}
		}
		answer["records"] = recs
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

func (p *linkedProcessor) held(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.records[id]
}

func (p *linkedProcessor) wasAsked(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked[id]
}

// The PostgreSQL shop provides customer.id (and the orders' ids); a Redis cache keyed by them and
// an http processor that knows only the customer id erase what is the subject's through them.
// Keys that look like the subject's under the wrong identifier (cart:10 is keyed by a customer
// id that happens to equal one of the subject's order ids) and the bystander's are left alone.
func TestLinkedAcrossStores(t *testing.T) {
	db, dsn := linkedShop(t)
	startOperator(t)
	ns := newNamespace(t, nil)
	create(t, connSecret(ns, "shop-conn", map[string]string{"dsn": dsn}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: linkedSpec("shop-conn")})

	rf := startRedisFixture(t)
	ctx := context.Background()
	rdb := rf.rdb
	must(t, rdb.FlushDB(ctx).Err())
	subjectKeys := []string{"cart:1", "order:10:lines", "order:11:lines"}
	bystanderKeys := []string{"cart:2", "cart:10", "cart:11", "cart:1x", "order:20:lines", "order:1:lines", "order:100:lines"}
	for _, k := range append(slices.Clone(subjectKeys), bystanderKeys...) {
		must(t, rdb.Set(ctx, k, "v", 0).Err())
	}
	create(t, connSecret(ns, "cache-conn", map[string]string{"url": rf.url}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cache"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypeRedis,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "cache-conn", Key: "url"}},
		Keys: []privacyv1alpha1.KeyMapping{
			{Pattern: "cart:{customerId}", Action: privacyv1alpha1.KeyActionDelete},
			{Pattern: "order:{orderId}:*", Action: privacyv1alpha1.KeyActionDelete},
		},
	}})

	proc := &linkedProcessor{records: map[string]int{"1": 2, "2": 1}, asked: map[string]bool{}}
	srv := httptest.NewServer(proc)
	t.Cleanup(srv.Close)
	httpDataStore(t, ns, "support", srv.URL, "linked-token")

	create(t, secret(ns, "jane", map[string]string{"email": "jane.doe@example.com"}))
	create(t, deletionRequest(ns, "erase-jane", "jane"))

	dr := waitDR(t, ns, "erase-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	if !isTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
		t.Errorf("conditions: %s", conditionsString(dr.Status.Conditions))
	}

	// What the stores hold now.
	if n := rdb.Exists(ctx, subjectKeys...).Val(); n != 0 {
		t.Errorf("redis: %d of the subject's linked keys left", n)
	}
	for _, k := range bystanderKeys {
		if rdb.Exists(ctx, k).Val() != 1 {
			t.Errorf("redis: bystander key %s was deleted", k)
		}
	}
	if proc.held("1") != 0 || proc.held("2") != 1 {
		t.Errorf("http processor holds %d of the subject's tickets and %d of 1 of the bystander's", proc.held("1"), proc.held("2"))
	}
	if proc.wasAsked("2") {
		t.Error("the bystander's customer id was sent to the http processor")
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM customer WHERE id = 2`); n != 1 {
		t.Error("the bystander's customer row is gone")
	}

	// Status: counts per store, the derived identifiers with their number of values only.
	want := map[string]int64{"shop": 6, "cache": 3, "support": 2}
	for name, erased := range want {
		st := storeStatus(t, dr, name)
		if st.Erased != erased || st.Remaining != 0 || st.Phase != privacyv1alpha1.StoreVerified {
			t.Errorf("store %s: erased %d (want %d), remaining %d, phase %s", name, st.Erased, erased, st.Remaining, st.Phase)
		}
	}
	wantDerived := []privacyv1alpha1.DerivedIdentifier{{Identifier: "customerId", Values: 1}, {Identifier: "orderId", Values: 2}}
	if got := storeStatus(t, dr, "shop").Derived; !slices.Equal(got, wantDerived) {
		t.Errorf("shop derived %+v, want %+v", got, wantDerived)
	}
	for _, name := range []string{"cache", "support"} {
		if got := storeStatus(t, dr, name).Derived; len(got) != 0 {
			t.Errorf("store %s derived %+v, want nothing", name, got)
		}
	}
	raw, _ := json.Marshal(dr.Status)
	for _, value := range []string{"jane.doe@example.com", `"10"`, `"11"`} {
		if strings.Contains(string(raw), value) {
			t.Errorf("status holds a value: %s", value)
		}
	}

	// The signed receipt states the same counts.
	rc := verifyReceipt(t, dr)
	for _, s := range rc.Stores {
		if s.Erased != want[s.Name] || s.Remaining != 0 {
			t.Errorf("receipt store %s: erased %d, want %d", s.Name, s.Erased, want[s.Name])
		}
	}
	if len(rc.Stores) != 3 {
		t.Errorf("receipt lists %d stores", len(rc.Stores))
	}
}
