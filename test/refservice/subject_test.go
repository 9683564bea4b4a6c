package refservice

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func normalisedService(t *testing.T) *httptest.Server {
	t.Helper()
	svc := New(Options{Token: token})
	seed := `{"locations": [
	  {"name": "crm.contacts", "action": "delete", "match": {"email": "email", "phone": "phone", "userId": "user"},
	   "records": [{"key": "c1", "data": {"email": "Ann@Example.com "}},
	               {"key": "c2", "data": {"phone": "+1 (555) 010-0001"}},
	               {"key": "c3", "data": {"phone": "555.010.0001"}},
	               {"key": "c4", "data": {"user": "U1"}},
	               {"key": "b1", "data": {"email": "ann1@example.com"}},
	               {"key": "b2", "data": {"phone": "+1 555 010 0010"}},
	               {"key": "b3", "data": {"phone": "+44 5550100001"}}]}
	]}`
	if err := svc.Load(strings.NewReader(seed)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/dsr", svc))
	t.Cleanup(srv.Close)
	return srv
}

// The service compares each identifier as its kind says, and exactly when no kind is sent.
func TestIdentifierKinds(t *testing.T) {
	srv := normalisedService(t)
	ids := map[string]string{"email": "ann@example.com", "phone": "+15550100001", "userId": "u1"}
	exact := post(t, srv, "/v1/verify", "exact", map[string]any{"protocolVersion": "v1", "requestId": "r", "identifiers": ids})
	if exact.status != 200 || exact.body["remaining"] != float64(0) {
		t.Fatalf("without kinds (exact): %d %v", exact.status, exact.body)
	}
	body := map[string]any{"protocolVersion": "v1", "requestId": "r", "identifiers": ids, "defaultRegion": "US",
		"identifierKinds": map[string]string{"email": "email", "phone": "phone", "userId": "exact"}}
	v := post(t, srv, "/v1/verify", "v", body)
	if v.status != 200 || v.body["remaining"] != float64(3) {
		t.Fatalf("with kinds: %d %v, want 3 remaining (c1, c2, c3)", v.status, v.body)
	}
	e := post(t, srv, "/v1/erase", "e", body)
	if e.status != 200 || e.body["erased"] != float64(3) {
		t.Fatalf("erase: %d %v", e.status, e.body)
	}
	col := post(t, srv, "/v1/collect", "c", map[string]any{"protocolVersion": "v1", "requestId": "r",
		"identifiers": map[string]string{"email": "ann1@example.com", "phone": "+1 555 010 0010", "userId": "U1"}}) // exact
	if recs, _ := col.body["records"].([]any); len(recs) != 3 {
		t.Fatalf("the bystanders b1, b2 and c4 must be intact: %v", col.body)
	}
	body["deep"] = true
	if d := post(t, srv, "/v1/verify", "d", body); d.body["remaining"] != float64(0) {
		t.Fatalf("deep verify after erase: %v", d.body)
	}
}
