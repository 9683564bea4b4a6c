package httpstore_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/httpstore"
	"github.com/dsr-operator/dsr-operator/test/refservice"
)

const (
	token    = "tok-3f9a.b_c~d+e/f=="
	mountAt  = "/dsr/api"
	taxLaw   = "Invoices are kept ten years (tax law)"
	aliceID  = "u-1001"
	aliceEml = "alice@example.com"
)

var alice = connector.Identifiers{"email": aliceEml, "userId": aliceID}

// seed holds Alice, and bystanders whose values resemble hers.
func seed() []refservice.Location {
	return []refservice.Location{
		{Name: "crm.contacts", Action: refservice.ActionDelete, Match: map[string]string{"email": "email", "userId": "id"},
			Records: []refservice.Record{
				{Key: "c1", Data: map[string]any{"id": aliceID, "email": aliceEml, "name": "Alice", "big": json.Number("9007199254740993")}},
				{Key: "c2", Data: map[string]any{"id": "u-2002", "email": "bob@example.com", "name": "Bob"}},
				{Key: "c3", Data: map[string]any{"id": "u-10010", "email": "x" + aliceEml, "name": "Xavier"}},
				{Key: "c4", Data: map[string]any{"id": "U-1001", "email": "alice@example.co", "name": "Not Alice"}},
			}},
		{Name: "billing.invoices", Action: refservice.ActionRetain, RetainReason: taxLaw, Match: map[string]string{"userId": "customer"},
			Records: []refservice.Record{
				{Key: "i1", Data: map[string]any{"customer": aliceID, "total": 12.5}},
				{Key: "i2", Data: map[string]any{"customer": aliceID, "total": 30.0}},
				{Key: "i3", Data: map[string]any{"customer": "u-2002", "total": 7.0}},
			}},
		{Name: "support.tickets", Action: refservice.ActionMask, MaskFields: []string{"email", "body"}, Match: map[string]string{"email": "email"},
			Records: []refservice.Record{
				{Key: "t1", Data: map[string]any{"email": aliceEml, "body": "my parcel is late", "status": "closed"}},
				{Key: "t2", Data: map[string]any{"email": "bob@example.com", "body": "hello", "status": "open"}},
			}},
	}
}

type env struct {
	svc    *refservice.Service
	srv    *httptest.Server
	client connector.Client
}

type setup struct {
	opts      refservice.Options
	provider  httpstore.Options
	tls       bool
	caBundle  []byte // nil: the test server's own certificate when tls
	noCA      bool
	timeout   time.Duration
	clientTok *string
}

func start(t *testing.T, s setup) *env {
	t.Helper()
	if s.opts.Token == "" {
		s.opts.Token = token
	}
	svc := refservice.New(s.opts)
	for _, l := range seed() {
		if err := svc.AddLocation(l); err != nil {
			t.Fatal(err)
		}
	}
	handler := http.StripPrefix(mountAt, svc)
	srv := httptest.NewUnstartedServer(handler)
	if s.tls {
		// The refused handshakes are the point of some tests, not news for the log.
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	cfg := config(srv.URL + mountAt)
	cfg.Secret = []byte(token + "\n") // Secrets written with echo end in a newline.
	if s.clientTok != nil {
		cfg.Secret = []byte(*s.clientTok)
	}
	if s.tls && !s.noCA {
		cfg.CABundle = s.caBundle
		if cfg.CABundle == nil {
			cfg.CABundle = certPEM(srv)
		}
	}
	if s.timeout > 0 {
		cfg.Spec.Connection.Timeout = &metav1.Duration{Duration: s.timeout}
	}
	client := newClient(t, httpstore.NewProvider(s.provider), cfg)
	return &env{svc: svc, srv: srv, client: client}
}

// config is the store at url; a plain http:// test server is opted in, as its owner would.
func config(url string) connector.Config {
	return connector.Config{
		Name: "DataStore shop/crm",
		Spec: &privacyv1alpha1.DataStoreSpec{
			Type:       privacyv1alpha1.StoreTypeHTTP,
			Connection: privacyv1alpha1.Connection{URL: url, AllowInsecureHTTP: strings.HasPrefix(url, "http://")},
		},
	}
}

func newClient(t *testing.T, p *httpstore.Provider, cfg connector.Config) connector.Client {
	t.Helper()
	c, err := p.NewClient(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func certPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func req(id string) connector.Request {
	return connector.Request{ID: id, Identifiers: alice}
}

func wantKind(t *testing.T, err error, kind connector.ErrorKind) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", kind)
	}
	if got := connector.KindOf(err); got != kind {
		t.Fatalf("error kind %s, want %s: %v", got, kind, err)
	}
	var ce *connector.Error
	if !errors.As(err, &ce) {
		t.Fatalf("not a *connector.Error: %T", err)
	}
}

// noValues fails if msg holds any of Alice's identifiers in any letter case.
func noValues(t *testing.T, msg string, ids connector.Identifiers) {
	t.Helper()
	for _, v := range ids {
		if strings.Contains(strings.ToLower(msg), strings.ToLower(v)) {
			t.Errorf("message holds an identifier value: %s", msg)
		}
	}
}

func keys(l refservice.Location) []string {
	var out []string
	for _, r := range l.Records {
		out = append(out, r.Key)
	}
	slices.Sort(out)
	return out
}

func TestRegistered(t *testing.T) {
	p, err := connector.ProviderFor(privacyv1alpha1.StoreTypeHTTP)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.(*httpstore.Provider); !ok {
		t.Fatalf("provider for http is %T", p)
	}
}

func TestCheck(t *testing.T) {
	e := start(t, setup{opts: refservice.Options{CheckWarnings: []string{"index on email\nis missing", strings.Repeat("w", 2000)}}})
	res, err := e.client.Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 2 || res.Warnings[0] != "index on email is missing" || len(res.Warnings[1]) > httpstore.MaxMessageBytes {
		t.Errorf("warnings %q", res.Warnings)
	}
}

func TestCheckWithoutTokenWarns(t *testing.T) {
	empty := ""
	e := start(t, setup{clientTok: &empty})
	e.svc.SetToken("")
	res, err := e.client.Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "without a bearer token") {
		t.Errorf("warnings %q", res.Warnings)
	}
}

func TestCollectOnlyTheSubject(t *testing.T) {
	e := start(t, setup{})
	col, err := e.client.Collect(t.Context(), req("r-collect"))
	if err != nil {
		t.Fatal(err)
	}
	if col.Pending {
		t.Fatal("pending")
	}
	var got []string
	for _, r := range col.Records {
		got = append(got, r.Location+"/"+r.Key)
	}
	slices.Sort(got)
	want := []string{"billing.invoices/i1", "billing.invoices/i2", "crm.contacts/c1", "support.tickets/t1"}
	if !slices.Equal(got, want) {
		t.Fatalf("collected %v, want %v", got, want)
	}
	for _, r := range col.Records {
		if r.Key == "c1" {
			// Integers beyond float64's precision survive.
			if n, ok := r.Data["big"].(json.Number); !ok || n.String() != "9007199254740993" {
				t.Errorf("big = %#v", r.Data["big"])
			}
			if r.Data["email"] != aliceEml {
				t.Errorf("collected data is altered: %v", r.Data)
			}
		}
	}
}

func TestEraseAndVerify(t *testing.T) {
	e := start(t, setup{})
	ctx := t.Context()

	before, err := e.client.Verify(ctx, req("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if before.Remaining != 2 || before.Retained != 2 {
		t.Fatalf("verify before: %+v", before)
	}

	dry := req("r1")
	dry.DryRun = true
	plan, err := e.client.Erase(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Erased != 1 || plan.Masked != 1 || plan.Retained != 2 || plan.Pending {
		t.Fatalf("dry run: %+v", plan)
	}
	if l, _ := e.svc.Location("crm.contacts"); len(l.Records) != 4 {
		t.Fatalf("the dry run erased: %v", keys(l))
	}

	res, err := e.client.Erase(ctx, req("r1"))
	if err != nil {
		t.Fatal(err)
	}
	wantRetained := []connector.LocationCount{{Location: "billing.invoices", Records: 2, Reason: taxLaw}}
	if res.Erased != 1 || res.Masked != 1 || res.Retained != 2 || res.Pending || !slices.Equal(res.RetainedLocations, wantRetained) {
		t.Fatalf("erase: %+v", res)
	}
	if l, _ := e.svc.Location("crm.contacts"); !slices.Equal(keys(l), []string{"c2", "c3", "c4"}) {
		t.Errorf("contacts left: %v", keys(l))
	}
	tickets, _ := e.svc.Location("support.tickets")
	for _, r := range tickets.Records {
		switch r.Key {
		case "t1":
			if r.Data["email"] != refservice.RedactedMarker || r.Data["body"] != refservice.RedactedMarker || r.Data["status"] != "closed" {
				t.Errorf("t1 not masked: %v", r.Data)
			}
		case "t2":
			if r.Data["email"] != "bob@example.com" || r.Data["body"] != "hello" {
				t.Errorf("a bystander's ticket changed: %v", r.Data)
			}
		}
	}
	if l, _ := e.svc.Location("billing.invoices"); len(l.Records) != 3 {
		t.Errorf("retained invoices changed: %v", keys(l))
	}

	after, err := e.client.Verify(ctx, req("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if after.Remaining != 0 || len(after.RemainingLocations) != 0 || after.Retained != 2 || !slices.Equal(after.RetainedLocations, wantRetained) {
		t.Fatalf("verify after: %+v", after)
	}

	// Deep verify finds a copy of the address in a bystander's free text.
	if err := e.svc.Put("crm.contacts", refservice.Record{Key: "c9", Data: map[string]any{"id": "u-9", "email": "carol@example.com", "notes": "forwarded from " + aliceEml}}); err != nil {
		t.Fatal(err)
	}
	deep := req("r1")
	deep.Deep = true
	found, err := e.client.Verify(ctx, deep)
	if err != nil {
		t.Fatal(err)
	}
	if found.Remaining < 1 || !slices.ContainsFunc(found.RemainingLocations, func(l connector.LocationCount) bool {
		return l.Location == "crm.contacts (deep: notes)" && l.Records == 1
	}) {
		t.Errorf("deep verify: %+v", found)
	}
	if plain, err := e.client.Verify(ctx, req("r1")); err != nil || plain.Remaining != 0 {
		t.Errorf("plain verify after deep: %+v %v", plain, err)
	}
}

// A repeated erase with the same request ID returns the first result, and the service erases
// once, however many calls race.
func TestEraseIsIdempotent(t *testing.T) {
	e := start(t, setup{})
	var wg sync.WaitGroup
	results := make([]*connector.EraseResult, 8)
	errs := make([]error, len(results))
	for i := range results {
		wg.Go(func() { results[i], errs[i] = e.client.Erase(t.Context(), req("r-same")) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if results[i].Erased != 1 || results[i].Masked != 1 || results[i].Retained != 2 {
			t.Errorf("call %d: %+v", i, results[i])
		}
	}
	if st := e.svc.Stats(); st.Erasures != 1 || st.Replays != len(results)-1 {
		t.Errorf("stats %+v", st)
	}

	// Data that reappears is not erased under the old ID, only under a new one.
	if err := e.svc.Put("crm.contacts", refservice.Record{Key: "c5", Data: map[string]any{"id": aliceID, "email": aliceEml}}); err != nil {
		t.Fatal(err)
	}
	replay, err := e.client.Erase(t.Context(), req("r-same"))
	if err != nil || replay.Erased != 1 {
		t.Fatalf("replay: %+v %v", replay, err)
	}
	if l, _ := e.svc.Location("crm.contacts"); !slices.Contains(keys(l), "c5") {
		t.Fatal("a replayed erase erased again")
	}
	again, err := e.client.Erase(t.Context(), req("r-same-reerase-1"))
	if err != nil || again.Erased != 1 || again.Masked != 0 {
		t.Fatalf("re-erasure: %+v %v", again, err)
	}
	if l, _ := e.svc.Location("crm.contacts"); slices.Contains(keys(l), "c5") {
		t.Fatal("the re-erasure left the reappeared record")
	}
}

func TestAsyncEraseCompletesLater(t *testing.T) {
	e := start(t, setup{opts: refservice.Options{Async: refservice.Async{Ops: []string{refservice.OpErase, refservice.OpCollect, refservice.OpVerify}, Polls: 2}}})
	ctx := t.Context()
	for i := range 2 {
		res, err := e.client.Erase(ctx, req("r-async"))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Pending || res.Erased != 0 {
			t.Fatalf("poll %d: %+v", i, res)
		}
		if l, _ := e.svc.Location("crm.contacts"); len(l.Records) != 4 {
			t.Fatal("erased before completion")
		}
	}
	res, err := e.client.Erase(ctx, req("r-async"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending || res.Erased != 1 || res.Masked != 1 || res.Retained != 2 {
		t.Fatalf("completion: %+v", res)
	}
	if l, _ := e.svc.Location("crm.contacts"); len(l.Records) != 3 {
		t.Fatalf("not erased: %v", keys(l))
	}
	if res, err := e.client.Erase(ctx, req("r-async")); err != nil || res.Pending || res.Erased != 1 {
		t.Fatalf("after completion: %+v %v", res, err)
	}
	if st := e.svc.Stats(); st.Erasures != 1 || st.Accepted != 2 {
		t.Errorf("stats %+v", st)
	}

	var v *connector.VerifyResult
	for v == nil || v.Pending {
		if v, err = e.client.Verify(ctx, req("r-async")); err != nil {
			t.Fatal(err)
		}
	}
	if v.Remaining != 0 || v.Retained != 2 {
		t.Errorf("verify: %+v", v)
	}
	var c *connector.Collection
	polls := 0
	// The invoices only: the contact is gone and the masked ticket no longer matches.
	for c == nil || c.Pending {
		if c, err = e.client.Collect(ctx, req("r-async")); err != nil {
			t.Fatal(err)
		}
		polls++
	}
	if polls != 3 || len(c.Records) != 2 {
		t.Errorf("collect after %d polls: %d records", polls, len(c.Records))
	}
}

func TestAsyncByDelay(t *testing.T) {
	e := start(t, setup{opts: refservice.Options{Async: refservice.Async{Ops: []string{refservice.OpErase}, Polls: 1 << 30, Delay: 100 * time.Millisecond}}})
	res, err := e.client.Erase(t.Context(), req("r-delay"))
	if err != nil || !res.Pending {
		t.Fatalf("%+v %v", res, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for res.Pending && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if res, err = e.client.Erase(t.Context(), req("r-delay")); err != nil {
			t.Fatal(err)
		}
	}
	if res.Pending || res.Erased != 1 {
		t.Fatalf("%+v", res)
	}
}

func TestWrongToken(t *testing.T) {
	wrong := "not-the-token"
	e := start(t, setup{clientTok: &wrong})
	_, err := e.client.Erase(t.Context(), req("r"))
	wantKind(t, err, connector.KindAuth)
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), token) {
		t.Errorf("the error holds a token: %v", err)
	}
	if !strings.Contains(err.Error(), "401") {
		t.Errorf("the error does not say 401: %v", err)
	}
	_, err = e.client.Check(t.Context())
	wantKind(t, err, connector.KindAuth)
	if e.svc.Stats().Erasures != 0 {
		t.Fatal("erased without authorisation")
	}
}

func TestUnavailableThenSuccess(t *testing.T) {
	e := start(t, setup{})
	e.svc.FailNext(1, refservice.Failure{Status: http.StatusServiceUnavailable, RetryAfter: 7 * time.Second, Code: "maintenance", Message: "back soon"})
	_, err := e.client.Erase(t.Context(), req("r"))
	wantKind(t, err, connector.KindUnavailable)
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() != 7*time.Second {
		t.Errorf("Retry-After not exposed: %v", err)
	}
	var se *httpstore.StatusError
	if !errors.As(err, &se) || se.StatusCode != 503 || se.Code != "maintenance" || se.Message != "back soon" {
		t.Errorf("status error: %#v", se)
	}
	if !connector.IsTransient(err) {
		t.Error("503 is not transient")
	}
	if e.svc.Stats().Erasures != 0 {
		t.Fatal("erased on a 503")
	}
	res, err := e.client.Erase(t.Context(), req("r"))
	if err != nil || res.Erased != 1 {
		t.Fatalf("retry: %+v %v", res, err)
	}
}

func TestStatusKinds(t *testing.T) {
	e := start(t, setup{})
	for status, kind := range map[int]connector.ErrorKind{
		400: connector.KindRejected, 401: connector.KindAuth, 403: connector.KindAuth, 404: connector.KindInvalid,
		405: connector.KindInvalid, 408: connector.KindUnavailable, 409: connector.KindRejected, 410: connector.KindRejected,
		413: connector.KindRejected, 422: connector.KindRejected, 429: connector.KindUnavailable, 500: connector.KindUnavailable,
		501: connector.KindInvalid, 502: connector.KindUnavailable, 503: connector.KindUnavailable, 504: connector.KindUnavailable,
	} {
		e.svc.FailNext(1, refservice.Failure{Status: status, Code: "x", Message: "refused"})
		_, err := e.client.Verify(t.Context(), req("r"))
		if got := connector.KindOf(err); got != kind {
			t.Errorf("HTTP %d: kind %s, want %s (%v)", status, got, kind, err)
		}
	}
}

func TestUnknownEndpointIsInvalidConfig(t *testing.T) {
	e := start(t, setup{})
	cfg := config(e.srv.URL + "/not-the-base")
	cfg.Secret = []byte(token)
	c := newClient(t, httpstore.NewProvider(httpstore.Options{}), cfg)
	_, err := c.Check(t.Context())
	wantKind(t, err, connector.KindInvalid)
	if !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "/not-the-base/v1/check") {
		t.Errorf("%v", err)
	}
}

func TestTLS(t *testing.T) {
	t.Run("with the CA bundle", func(t *testing.T) {
		e := start(t, setup{tls: true})
		if _, err := e.client.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		res, err := e.client.Erase(t.Context(), req("r"))
		if err != nil || res.Erased != 1 {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("without a CA bundle", func(t *testing.T) {
		e := start(t, setup{tls: true, noCA: true})
		_, err := e.client.Check(t.Context())
		wantKind(t, err, connector.KindAuth)
		for _, want := range []string{"TLS certificate is not trusted", "x509", "connection.caSecretRef"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q: %v", want, err)
			}
		}
	})
	t.Run("with another CA's bundle", func(t *testing.T) {
		// httptest servers share one certificate: the bundle is a CA of its own.
		bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: selfSigned(t)})
		e := start(t, setup{tls: true, caBundle: bundle})
		_, err := e.client.Erase(t.Context(), req("r"))
		wantKind(t, err, connector.KindAuth)
		if !strings.Contains(err.Error(), "chain to a certificate of the CA bundle") {
			t.Errorf("%v", err)
		}
		if e.svc.Stats().Erasures != 0 {
			t.Fatal("erased over an untrusted connection")
		}
	})
	t.Run("https to a plain http port", func(t *testing.T) {
		e := start(t, setup{})
		cfg := config(strings.Replace(e.srv.URL, "http://", "https://", 1) + mountAt)
		c := newClient(t, httpstore.NewProvider(httpstore.Options{}), cfg)
		_, err := c.Check(t.Context())
		wantKind(t, err, connector.KindInvalid)
	})
}

func TestHostileIdentifiers(t *testing.T) {
	hostile := []string{
		`"}, "identifiers": {"email": "*"}, "x": "`,
		"line\r\nAuthorization: Bearer x\r\n\r\n",
		"*", "%", "_", ".*", "' OR '1'='1", "ü\u202eevil\u0000nul", "../../v1/erase?x=1#y",
		strings.Repeat("A", 64<<10),
	}
	e := start(t, setup{})
	for i, v := range hostile {
		if err := e.svc.Put("crm.contacts", refservice.Record{Key: fmt.Sprintf("h%d", i), Data: map[string]any{"id": fmt.Sprintf("h-%d", i), "email": v}}); err != nil {
			t.Fatal(err)
		}
	}
	total := func() int { l, _ := e.svc.Location("crm.contacts"); return len(l.Records) }
	n := total()
	for i, v := range hostile {
		ids := connector.Identifiers{"email": v}
		col, err := e.client.Collect(t.Context(), connector.Request{ID: fmt.Sprintf("c%d", i), Identifiers: ids})
		if err != nil {
			t.Fatalf("%q: %v", v[:min(len(v), 20)], err)
		}
		if len(col.Records) != 1 || col.Records[0].Data["email"] != v {
			t.Fatalf("collect %d: %d records", i, len(col.Records))
		}
		res, err := e.client.Erase(t.Context(), connector.Request{ID: fmt.Sprintf("e%d", i), Identifiers: ids})
		if err != nil || res.Erased != 1 {
			t.Fatalf("erase %d: %+v %v", i, res, err)
		}
		n--
		if got := total(); got != n {
			t.Fatalf("erase %d: %d records left, want %d", i, got, n)
		}
	}
	if l, _ := e.svc.Location("crm.contacts"); !slices.Equal(keys(l), []string{"c1", "c2", "c3", "c4"}) {
		t.Errorf("bystanders: %v", keys(l))
	}
}

func TestServerMessagesAreScrubbed(t *testing.T) {
	e := start(t, setup{})
	ids := connector.Identifiers{"email": "Alice.O'Hara+dsr@Example.com", "userId": "u-77", "name": `Zoë "Z" <Ng>`}
	r := connector.Request{ID: "r", Identifiers: ids}
	for name, f := range map[string]refservice.Failure{
		"echoed":       {Status: 422, Code: "unknown_subject", Message: "no such subject:", EchoIdentifiers: true},
		"lower-cased":  {Status: 422, Message: "no account for alice.o'hara+dsr@example.com"},
		"json-escaped": {Status: 400, Message: `bad name "Zo\u00eb \"Z\" \u003cNg\u003e"`},
		"url-escaped":  {Status: 400, Message: "see /users?email=Alice.O%27Hara%2Bdsr%40Example.com"},
		"html-escaped": {Status: 400, Message: "name Zoë &#34;Z&#34; &lt;Ng&gt; invalid"},
		"long":         {Status: 503, Message: strings.Repeat("x", 5000) + "u-77"},
		"control":      {Status: 409, Code: "bad code with spaces", Message: "a\nforged: log line\x1b[31m\u202e"},
	} {
		t.Run(name, func(t *testing.T) {
			e.svc.FailNext(1, f)
			_, err := e.client.Erase(t.Context(), r)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			noValues(t, msg, ids)
			for _, bad := range []string{"%40Example", "Zo\\u00eb", "&lt;Ng", "\n", "\x1b", "\u202e", "bad code"} {
				if strings.Contains(msg, bad) {
					t.Errorf("message holds %q: %s", bad, msg)
				}
			}
			var se *httpstore.StatusError
			if !errors.As(err, &se) || len(se.Message) > httpstore.MaxMessageBytes {
				t.Errorf("message not capped: %d bytes", len(se.Message))
			}
			if name != "long" && name != "control" && !strings.Contains(msg, "[identifier]") {
				t.Errorf("nothing scrubbed: %s", msg)
			}
		})
	}
}

func TestOversizeCollectRefused(t *testing.T) {
	e := start(t, setup{provider: httpstore.Options{MaxCollectBytes: 8 << 10}})
	col, err := e.client.Collect(t.Context(), req("r-small"))
	if err != nil || len(col.Records) != 4 {
		t.Fatalf("small collect: %v", err)
	}
	if err := e.svc.Put("crm.contacts", refservice.Record{Key: "big", Data: map[string]any{"id": aliceID, "blob": strings.Repeat("z", 16<<10)}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Collect(t.Context(), req("r-big"))
	wantKind(t, err, connector.KindRejected)
	if !strings.Contains(err.Error(), "exceeds the limit of 8 KiB") {
		t.Errorf("%v", err)
	}
}

func TestRequestsTheConnectorRefusesToSend(t *testing.T) {
	e := start(t, setup{})
	for name, r := range map[string]connector.Request{
		"no ID":             {Identifiers: alice},
		"ID with a newline": {ID: "a\nb", Identifiers: alice},
		"no identifiers":    {ID: "r"},
		"empty identifiers": {ID: "r", Identifiers: connector.Identifiers{"email": ""}},
	} {
		_, err := e.client.Erase(context.Background(), r)
		if connector.KindOf(err) != connector.KindRejected {
			t.Errorf("%s: %v", name, err)
		}
	}
	if st := e.svc.Stats(); st.Erasures != 0 {
		t.Errorf("a refused request reached the service: %+v", st)
	}
}

func TestTimeoutIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	cfg := config(srv.URL)
	cfg.Spec.Connection.Timeout = &metav1.Duration{Duration: 200 * time.Millisecond}
	c := newClient(t, httpstore.NewProvider(httpstore.Options{}), cfg)
	began := time.Now()
	_, err := c.Erase(t.Context(), req("r"))
	wantKind(t, err, connector.KindUnavailable)
	if time.Since(began) > 5*time.Second || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("after %s: %v", time.Since(began), err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Verify(ctx, req("r"))
	wantKind(t, err, connector.KindUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("not a deadline: %v", err)
	}
}

func TestConnectionRefusedIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newClient(t, httpstore.NewProvider(httpstore.Options{}), config(url))
	_, err := c.Check(t.Context())
	wantKind(t, err, connector.KindUnavailable)
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("%v", err)
	}
}
