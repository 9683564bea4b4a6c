package refservice

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

const token = "s3cret-token"

func seeded(t *testing.T, opts Options) (*Service, *httptest.Server) {
	t.Helper()
	if opts.Token == "" {
		opts.Token = token
	}
	svc := New(opts)
	seed := `{"locations": [
	  {"name": "crm.contacts", "action": "delete", "match": {"email": "email"},
	   "records": [{"key": "c1", "data": {"email": "ann@example.com", "name": "Ann"}},
	               {"key": "c2", "data": {"email": "bob@example.com", "name": "Bob"}}]},
	  {"name": "billing.invoices", "action": "retain", "retainReason": "tax law", "match": {"email": "email"},
	   "records": [{"data": {"email": "ann@example.com", "total": 12}}]},
	  {"name": "support.tickets", "action": "mask", "maskFields": ["email"], "match": {"userId": "user"},
	   "records": [{"data": {"user": "u1", "email": "ann@example.com"}}]}
	]}`
	if err := svc.Load(strings.NewReader(seed)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/dsr", svc))
	t.Cleanup(srv.Close)
	return svc, srv
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func post(t *testing.T, srv *httptest.Server, path, key string, body any) answer {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/dsr"+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("%s answered %d with non-JSON %q", req.URL.Path, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	return a
}

func ann(id string) map[string]any {
	return map[string]any{"protocolVersion": "v1", "requestId": id, "identifiers": map[string]string{"email": "ann@example.com", "userId": "u1"}}
}

func errorCode(a answer) string {
	e, _ := a.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestEraseIsIdempotentAndVerifies(t *testing.T) {
	svc, srv := seeded(t, Options{})
	dry := ann("r1")
	dry["dryRun"] = true
	a := post(t, srv, "/v1/erase", "r1-erase-dryrun", dry)
	if a.status != 200 || a.body["erased"] != 1.0 || a.body["masked"] != 1.0 || a.body["retained"] != 1.0 {
		t.Fatalf("dry run: %d %v", a.status, a.body)
	}
	if l, _ := svc.Location("crm.contacts"); len(l.Records) != 2 {
		t.Fatalf("a dry run changed the store: %v", l.Records)
	}

	first := post(t, srv, "/v1/erase", "r1-erase", ann("r1"))
	if first.status != 200 || first.body["erased"] != 1.0 || first.body["masked"] != 1.0 || first.body["retained"] != 1.0 || first.body["status"] != "done" {
		t.Fatalf("erase: %d %v", first.status, first.body)
	}
	retained := first.body["retainedLocations"].([]any)[0].(map[string]any)
	if retained["location"] != "billing.invoices" || retained["records"] != 1.0 || retained["reason"] != "tax law" {
		t.Errorf("retainedLocations: %v", retained)
	}
	l, _ := svc.Location("crm.contacts")
	if len(l.Records) != 1 || l.Records[0].Data["email"] != "bob@example.com" {
		t.Errorf("contacts after erase: %v", l.Records)
	}
	if l, _ := svc.Location("support.tickets"); l.Records[0].Data["email"] != RedactedMarker {
		t.Errorf("ticket not masked: %v", l.Records)
	}

	// The same key answers the same result and erases nothing, even if data came back meanwhile.
	if err := svc.Put("crm.contacts", Record{Data: map[string]any{"email": "ann@example.com"}}); err != nil {
		t.Fatal(err)
	}
	again := post(t, srv, "/v1/erase", "r1-erase", ann("r1"))
	if again.status != 200 || again.body["erased"] != 1.0 || again.body["masked"] != 1.0 {
		t.Fatalf("repeat: %d %v", again.status, again.body)
	}
	if st := svc.Stats(); st.Erasures != 1 || st.Replays != 1 {
		t.Errorf("stats %+v", st)
	}
	v := post(t, srv, "/v1/verify", "r1-verify", ann("r1"))
	if v.status != 200 || v.body["remaining"] != 1.0 || v.body["retained"] != 1.0 {
		t.Fatalf("verify: %d %v", v.status, v.body)
	}

	// A new key erases what reappeared.
	fresh := post(t, srv, "/v1/erase", "r1b-erase", ann("r1b"))
	if fresh.body["erased"] != 1.0 || fresh.body["masked"] != 0.0 {
		t.Errorf("re-erasure: %v", fresh.body)
	}
	if v := post(t, srv, "/v1/verify", "r1-verify", ann("r1")); v.body["remaining"] != 0.0 {
		t.Errorf("verify after re-erasure: %v", v.body)
	}
}

func TestKeyReusedForAnotherRequest(t *testing.T) {
	_, srv := seeded(t, Options{})
	if a := post(t, srv, "/v1/erase", "k", ann("r1")); a.status != 200 {
		t.Fatal(a)
	}
	other := ann("r1")
	other["identifiers"] = map[string]string{"email": "bob@example.com"}
	if a := post(t, srv, "/v1/erase", "k", other); a.status != 422 || errorCode(a) != "idempotency_key_reused" {
		t.Errorf("reused key: %d %v", a.status, a.body)
	}
}

func TestAsyncJobs(t *testing.T) {
	svc, srv := seeded(t, Options{Async: Async{Ops: []string{OpErase, OpCollect}, Polls: 2, RetryAfter: 3 * time.Second}})
	for i := range 2 {
		a := post(t, srv, "/v1/erase", "r1-erase", ann("r1"))
		if a.status != 202 || a.body["status"] != "pending" || a.body["retryAfterSeconds"] != 3.0 || a.header.Get("Retry-After") != "3" {
			t.Fatalf("POST %d: %d %v", i, a.status, a.body)
		}
		statusURL, _ := a.body["statusUrl"].(string)
		if !strings.HasPrefix(statusURL, "/dsr/v1/jobs/") {
			t.Fatalf("statusUrl %q", statusURL)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+statusURL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if st := do(t, req); st.status != 200 || st.body["status"] != "pending" || len(st.body) != 2 {
			t.Fatalf("job status: %d %v", st.status, st.body)
		}
		if l, _ := svc.Location("crm.contacts"); len(l.Records) != 2 {
			t.Fatal("a pending job erased")
		}
	}
	a := post(t, srv, "/v1/erase", "r1-erase", ann("r1"))
	if a.status != 200 || a.body["erased"] != 1.0 {
		t.Fatalf("completion: %d %v", a.status, a.body)
	}
	if a := post(t, srv, "/v1/erase", "r1-erase", ann("r1")); a.status != 200 || a.body["erased"] != 1.0 {
		t.Fatalf("after completion: %d %v", a.status, a.body)
	}

	// A read is forgotten once answered: the next POST with its key starts again.
	for _, want := range []int{202, 202, 200, 202} {
		if a := post(t, srv, "/v1/collect", "r1-collect", ann("r1")); a.status != want {
			t.Fatalf("collect answered %d, want %d", a.status, want)
		}
	}
	if a := post(t, srv, "/v1/verify", "r1-verify", ann("r1")); a.status != 200 {
		t.Errorf("verify is not async here: %d", a.status)
	}
}

func TestAsyncDelay(t *testing.T) {
	_, srv := seeded(t, Options{Async: Async{Ops: []string{OpVerify}, Polls: 1000, Delay: 50 * time.Millisecond}})
	if a := post(t, srv, "/v1/verify", "v", ann("r")); a.status != 202 {
		t.Fatal(a.status)
	}
	time.Sleep(60 * time.Millisecond)
	if a := post(t, srv, "/v1/verify", "v", ann("r")); a.status != 200 || a.body["remaining"] != 2.0 {
		t.Fatalf("%d %v", a.status, a.body)
	}
}

func TestCollectAndDeepVerify(t *testing.T) {
	svc, srv := seeded(t, Options{})
	a := post(t, srv, "/v1/collect", "c", ann("r"))
	records := a.body["records"].([]any)
	if len(records) != 3 {
		t.Fatalf("collect: %v", records)
	}
	for _, r := range records {
		if strings.Contains(mustJSON(t, r), "bob@") {
			t.Errorf("collected a bystander: %v", r)
		}
	}
	if err := svc.Put("crm.contacts", Record{Data: map[string]any{"email": "carl@example.com", "notes": "friend of ann@example.com"}}); err != nil {
		t.Fatal(err)
	}
	post(t, srv, "/v1/erase", "e", ann("r"))
	deep := ann("r")
	deep["deep"] = true
	v := post(t, srv, "/v1/verify", "v", deep)
	if v.body["remaining"] != 1.0 || !strings.Contains(mustJSON(t, v.body["remainingLocations"]), "crm.contacts (deep: notes)") {
		t.Errorf("deep verify: %v", v.body)
	}
}

func TestRefusals(t *testing.T) {
	svc, srv := seeded(t, Options{})
	send := func(path, contentType, auth, key, body string) answer {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/dsr"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", auth)
		req.Header.Set("Idempotency-Key", key)
		return do(t, req)
	}
	valid := mustJSON(t, ann("r"))
	cases := []struct {
		name                            string
		path, contentType, auth, key, b string
		status                          int
		code                            string
	}{
		{"no token", "/v1/erase", "application/json", "", "k", valid, 401, "unauthorized"},
		{"wrong token", "/v1/erase", "application/json", "Bearer nope", "k", valid, 401, "unauthorized"},
		{"not json", "/v1/erase", "text/plain", "Bearer " + token, "k", valid, 415, "unsupported_media_type"},
		{"no key", "/v1/erase", "application/json", "Bearer " + token, "", valid, 400, "missing_idempotency_key"},
		{"no identifiers", "/v1/erase", "application/json", "Bearer " + token, "k", `{"protocolVersion":"v1","requestId":"r","identifiers":{"email":""}}`, 400, "no_identifiers"},
		{"v2", "/v1/erase", "application/json", "Bearer " + token, "k", `{"protocolVersion":"v2","requestId":"r","identifiers":{"email":"a"}}`, 400, "unsupported_protocol_version"},
		{"garbage", "/v1/erase", "application/json", "Bearer " + token, "k", `{"identifiers": "ann@example.com"`, 400, "malformed_request"},
		{"too large", "/v1/erase", "application/json", "Bearer " + token, "k", strings.Repeat(" ", MaxRequestBytes+1), 413, "request_too_large"},
		{"unknown kind", "/v1/erase", "application/json", "Bearer " + token, "k", `{"protocolVersion":"v1","requestId":"r","identifiers":{"email":"ann@example.com"},"identifierKinds":{"email":"fuzzy"}}`, 400, "bad_identifier_kinds"},
		{"bad region", "/v1/erase", "application/json", "Bearer " + token, "k", `{"protocolVersion":"v1","requestId":"r","identifiers":{"email":"ann@example.com"},"defaultRegion":"usa"}`, 400, "bad_identifier_kinds"},
		{"unknown endpoint", "/v1/delete", "application/json", "Bearer " + token, "k", valid, 404, "not_found"},
	}
	for _, c := range cases {
		a := send(c.path, c.contentType, c.auth, c.key, c.b)
		if a.status != c.status || errorCode(a) != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, a.status, a.body, c.status, c.code)
		}
		if strings.Contains(mustJSON(t, a.body), "ann@") {
			t.Errorf("%s: the error echoes an identifier: %v", c.name, a.body)
		}
	}
	if svc.Stats().Erasures != 0 {
		t.Error("a refused request erased")
	}
}

func TestFailNext(t *testing.T) {
	svc, srv := seeded(t, Options{})
	svc.FailNext(2, Failure{Status: 503, RetryAfter: 5 * time.Second, Code: "maintenance", Message: "down for", EchoIdentifiers: true})
	for range 2 {
		a := post(t, srv, "/v1/erase", "k", ann("r"))
		if a.status != 503 || a.header.Get("Retry-After") != "5" || errorCode(a) != "maintenance" {
			t.Fatalf("%d %v", a.status, a.body)
		}
		if msg := a.body["error"].(map[string]any)["message"]; msg != "down for email=ann@example.com userId=u1" {
			t.Errorf("message %q", msg)
		}
	}
	if a := post(t, srv, "/v1/erase", "k", ann("r")); a.status != 200 {
		t.Errorf("after the failures: %d", a.status)
	}
}

func TestCheck(t *testing.T) {
	_, srv := seeded(t, Options{CheckWarnings: []string{"slow index"}})
	a := post(t, srv, "/v1/check", "", map[string]any{"protocolVersion": "v1"})
	if a.status != 200 || a.body["ok"] != true || mustJSON(t, a.body["warnings"]) != `["slow index"]` {
		t.Errorf("%d %v", a.status, a.body)
	}
}

func TestSeedRefusesBadLocations(t *testing.T) {
	for _, seed := range []string{
		`{"locations":[{"name":"a","action":"retain","match":{"email":"e"}}]}`,
		`{"locations":[{"name":"a","action":"mask","match":{"email":"e"}}]}`,
		`{"locations":[{"name":"a","action":"delete"}]}`,
		`{"locations":[{"name":"a","action":"drop","match":{"email":"e"}}]}`,
		`{"locations":[{"name":"a","action":"delete","match":{"email":"e"}}],"extra":1}`,
	} {
		if err := New(Options{}).Load(strings.NewReader(seed)); err == nil {
			t.Errorf("accepted %s", seed)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExampleSeedLoads(t *testing.T) {
	f, err := os.Open("cmd/refservice/seed.example.json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	svc := New(Options{})
	if err := svc.Load(f); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	body := `{"protocolVersion":"v1","requestId":"req-1","identifiers":{"email":"jane.doe@example.com","userId":"u-48213"},"dryRun":false,"deep":false}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/erase", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "req-1-erase")
	a := do(t, req)
	if a.body["erased"] != 1.0 || a.body["masked"] != 1.0 || a.body["retained"] != 1.0 {
		t.Errorf("the README's example answers %v", a.body)
	}
}
