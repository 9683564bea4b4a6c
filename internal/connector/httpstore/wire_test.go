package httpstore_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/httpstore"
)

// These tests use small handlers that misbehave on purpose, or record what arrives: the
// connector must hold its ground against a broken or wrongly configured service.

func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "some other CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func serve(t *testing.T, h http.HandlerFunc) connector.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := config(srv.URL + "/base/")
	cfg.Secret = []byte(token)
	return newClient(t, httpstore.NewProvider(httpstore.Options{}), cfg)
}

func answerJSON(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestWhatGoesOnTheWire(t *testing.T) {
	type seen struct {
		method, path, rawQuery string
		header                 http.Header
		body                   map[string]any
	}
	var mu sync.Mutex
	var calls []seen
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		calls = append(calls, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		mu.Unlock()
		answerJSON(200, `{"protocolVersion":"v1","ok":true,"records":[],"erased":0,"masked":0,"retained":0,"remaining":0}`)(w, r)
	})
	ctx := t.Context()
	if _, err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	r := req("0b1c-uid")
	r.Identifiers = connector.Identifiers{"email": aliceEml, "phone": ""}
	if _, err := c.Collect(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Erase(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.DryRun = true
	if _, err := c.Erase(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.DryRun, r.Deep = false, true
	if _, err := c.Verify(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Deep = false
	if _, err := c.Verify(ctx, r); err != nil {
		t.Fatal(err)
	}
	want := []struct{ path, key string }{
		{"/base/v1/check", ""}, {"/base/v1/collect", "0b1c-uid-collect"}, {"/base/v1/erase", "0b1c-uid-erase"},
		{"/base/v1/erase", "0b1c-uid-erase-dryrun"}, {"/base/v1/verify", "0b1c-uid-verify-deep"}, {"/base/v1/verify", "0b1c-uid-verify"},
	}
	if len(calls) != len(want) {
		t.Fatalf("%d calls", len(calls))
	}
	for i, c := range calls {
		if c.method != http.MethodPost || c.path != want[i].path || c.rawQuery != "" {
			t.Errorf("call %d: %s %s?%s", i, c.method, c.path, c.rawQuery)
		}
		if got := c.header.Get("Idempotency-Key"); got != want[i].key {
			t.Errorf("call %d: Idempotency-Key %q, want %q", i, got, want[i].key)
		}
		if c.header.Get("Authorization") != "Bearer "+token || c.header.Get("Content-Type") != "application/json" || c.header.Get("Accept") != "application/json" {
			t.Errorf("call %d: headers %v", i, c.header)
		}
		for name, values := range c.header {
			if strings.Contains(strings.Join(values, " "), aliceEml) {
				t.Errorf("call %d: header %s holds an identifier", i, name)
			}
		}
		if c.body["protocolVersion"] != "v1" {
			t.Errorf("call %d: body %v", i, c.body)
		}
		if i == 0 {
			continue
		}
		ids, _ := c.body["identifiers"].(map[string]any)
		if len(ids) != 1 || ids["email"] != aliceEml || c.body["requestId"] != "0b1c-uid" {
			t.Errorf("call %d: body %v (empty identifiers must not be sent)", i, c.body)
		}
		// The kind of each identifier sent travels with it; no region is set, so none is sent.
		kinds, _ := c.body["identifierKinds"].(map[string]any)
		if len(kinds) != 1 || kinds["email"] != "email" {
			t.Errorf("call %d: identifierKinds %v, want {email: email}", i, c.body["identifierKinds"])
		}
		if _, has := c.body["defaultRegion"]; has {
			t.Errorf("call %d: defaultRegion sent without one set", i)
		}
	}
	if calls[3].body["dryRun"] != true || calls[2].body["dryRun"] != false || calls[4].body["deep"] != true || calls[5].body["deep"] != false {
		t.Errorf("dryRun/deep: %v %v %v %v", calls[2].body, calls[3].body, calls[4].body, calls[5].body)
	}
}

func TestProtocolViolations(t *testing.T) {
	type op func(connector.Client) error
	erase := func(c connector.Client) error { _, err := c.Erase(t.Context(), req("r")); return err }
	verify := func(c connector.Client) error { _, err := c.Verify(t.Context(), req("r")); return err }
	collect := func(c connector.Client) error { _, err := c.Collect(t.Context(), req("r")); return err }
	check := func(c connector.Client) error { _, err := c.Check(t.Context()); return err }
	html := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>login</html>")
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		op      op
		kind    connector.ErrorKind
		says    string
	}{
		{"html page", html, erase, connector.KindInvalid, "not application/json"},
		{"empty object", answerJSON(200, `{}`), erase, connector.KindInvalid, "protocolVersion is missing"},
		{"other version", answerJSON(200, `{"protocolVersion":"v2","erased":0,"masked":0,"retained":0}`), erase, connector.KindInvalid, `protocol "v2"`},
		{"not an object", answerJSON(200, `[1,2]`), erase, connector.KindInvalid, "not a JSON object"},
		{"missing count", answerJSON(200, `{"protocolVersion":"v1","erased":1,"retained":0}`), erase, connector.KindInvalid, "masked is missing"},
		{"negative count", answerJSON(200, `{"protocolVersion":"v1","erased":-1,"masked":0,"retained":0}`), erase, connector.KindInvalid, "erased is negative"},
		{"fractional count", answerJSON(200, `{"protocolVersion":"v1","erased":1.5,"masked":0,"retained":0}`), erase, connector.KindInvalid, "breaks protocol"},
		{"retained without locations", answerJSON(200, `{"protocolVersion":"v1","erased":0,"masked":0,"retained":3}`), erase, connector.KindInvalid, "add up to 0, not 3"},
		{"retained without reason", answerJSON(200, `{"protocolVersion":"v1","erased":0,"masked":0,"retained":1,"retainedLocations":[{"location":"a","records":1}]}`), erase, connector.KindInvalid, "has no reason"},
		{"remaining mismatch", answerJSON(200, `{"protocolVersion":"v1","remaining":2,"retained":0,"remainingLocations":[{"location":"a","records":1}]}`), verify, connector.KindInvalid, "add up to 1, not 2"},
		{"records missing", answerJSON(200, `{"protocolVersion":"v1"}`), collect, connector.KindInvalid, "records is missing"},
		{"record without data", answerJSON(200, `{"protocolVersion":"v1","records":[{"location":"a"}]}`), collect, connector.KindInvalid, "no data object"},
		{"pending with 200", answerJSON(200, `{"protocolVersion":"v1","status":"pending"}`), erase, connector.KindInvalid, `"done" or none`},
		{"202 without pending", answerJSON(202, `{"protocolVersion":"v1"}`), erase, connector.KindInvalid, `status "pending"`},
		{"202 on check", answerJSON(202, `{"protocolVersion":"v1","status":"pending"}`), check, connector.KindInvalid, "must answer 200"},
		{"204", answerJSON(204, ``), erase, connector.KindInvalid, "only 200 and 202"},
		{"check not ok", answerJSON(200, `{"protocolVersion":"v1","ok":false,"message":"mapping\nbroken"}`), check, connector.KindRejected, "cannot serve requests: mapping broken"},
		{"check without ok", answerJSON(200, `{"protocolVersion":"v1"}`), check, connector.KindInvalid, "ok is missing"},
		{"error body not json", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad gateway "+aliceEml, http.StatusBadGateway)
		}, erase, connector.KindUnavailable, "HTTP 502 Bad Gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op(serve(t, tc.handler))
			wantKind(t, err, tc.kind)
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("the error does not say %q: %v", tc.says, err)
			}
			noValues(t, err.Error(), alice)
		})
	}
}

func TestOversizeAnswerRefusedAtDefaultLimit(t *testing.T) {
	pad := strings.Repeat("x", httpstore.DefaultMaxResponseBytes)
	for name, h := range map[string]http.HandlerFunc{
		"with Content-Length": answerJSON(200, `{"protocolVersion":"v1","pad":"`+pad+`","erased":0,"masked":0,"retained":0}`),
		"chunked": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"protocolVersion":"v1","pad":"`)
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, pad+`","erased":0,"masked":0,"retained":0}`)
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := serve(t, h).Erase(t.Context(), req("r"))
			wantKind(t, err, connector.KindRejected)
			if !strings.Contains(err.Error(), "exceeds the limit of 1 MiB") {
				t.Errorf("%v", err)
			}
		})
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var leaked atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { leaked.Add(1) }))
	defer target.Close()
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	_, err := c.Erase(t.Context(), req("r"))
	wantKind(t, err, connector.KindInvalid)
	if !strings.Contains(err.Error(), "redirects (HTTP 307)") {
		t.Errorf("%v", err)
	}
	if leaked.Load() != 0 {
		t.Fatal("the request followed the redirect")
	}
}

// Calls reuse one keep-alive connection.
func TestConnectionsArePooled(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(answerJSON(200, `{"protocolVersion":"v1","remaining":0,"retained":0}`))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newClient(t, httpstore.NewProvider(httpstore.Options{}), config(srv.URL))
	for range 10 {
		if _, err := c.Verify(t.Context(), req("r")); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 10 sequential calls", n)
	}
}

func TestOldTLSRefused(t *testing.T) {
	srv := httptest.NewUnstartedServer(answerJSON(200, `{"protocolVersion":"v1","ok":true}`))
	srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	cfg := config(srv.URL)
	cfg.CABundle = certPEM(srv)
	c := newClient(t, httpstore.NewProvider(httpstore.Options{}), cfg)
	_, err := c.Check(t.Context())
	if err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("%v", err)
	}
}

func TestConfiguration(t *testing.T) {
	p := httpstore.NewProvider(httpstore.Options{})
	for name, tc := range map[string]struct {
		url      string
		secret   string
		caBundle string
		says     string
	}{
		"no url":           {url: "", says: "connection.url is required"},
		"ftp":              {url: "ftp://h/x", says: "https:// or http://"},
		"no host":          {url: "https:///x", says: "no host"},
		"credentials":      {url: "https://user:hunter2@h/x", says: "must not hold credentials"},
		"query":            {url: "https://h/x?a=1", says: "must not have a query"},
		"fragment":         {url: "https://h/x#f", says: "must not have a fragment"},
		"token with space": {url: "https://h", secret: "abc def", says: "Authorization header cannot carry"},
		"token non-ascii":  {url: "https://h", secret: "tökén", says: "Authorization header cannot carry"},
		"garbage bundle":   {url: "https://h", caBundle: "not a pem", says: "holds no PEM certificate"},
		"bundle with http": {url: "http://h", caBundle: "x", says: "not https://"},
	} {
		cfg := config(tc.url)
		cfg.Secret, cfg.CABundle = []byte(tc.secret), []byte(tc.caBundle)
		_, err := p.NewClient(t.Context(), cfg)
		if connector.KindOf(err) != connector.KindInvalid || err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, secret := range []string{"hunter2", "abc def", "tökén"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error quotes a secret: %v", name, err)
			}
		}
	}
}

func TestValidateSpec(t *testing.T) {
	p := httpstore.NewProvider(httpstore.Options{})
	ok := config("https://crm.internal/dsr").Spec
	if err := p.ValidateSpec(ok); err != nil {
		t.Fatal(err)
	}
	withTables := config("https://crm.internal/dsr").Spec
	withTables.Tables = []privacyv1alpha1.TableMapping{{Name: "users"}}
	withKeys := config("https://crm.internal/dsr").Spec
	withKeys.Keys = []privacyv1alpha1.KeyMapping{{Pattern: "u:{userId}"}}
	otherType := config("https://crm.internal/dsr").Spec
	otherType.Type = privacyv1alpha1.StoreTypePostgres
	for name, spec := range map[string]*privacyv1alpha1.DataStoreSpec{
		"nil":        nil,
		"other type": otherType,
		"tables":     withTables,
		"keys":       withKeys,
		"bad url":    config("https://u:p@h").Spec,
	} {
		if err := p.ValidateSpec(spec); connector.KindOf(err) != connector.KindMapping {
			t.Errorf("%s: %v", name, err)
		}
	}
}
