package httpstore_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/httpstore"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
	"github.com/dsr-operator/dsr-operator/test/refservice"
)

const (
	listedEmail   = "  Drop.Listed@Example.COM "
	listedPhone   = "+1 (415) 555-0134"
	bystanderMail = "drop.listed@example.co"
)

// sweepSeed adds, to seed(), a person on a DROP list (an email in two places, one under a legal
// hold, and a phone number) and bystanders whose values resemble theirs.
func sweepSeed() []refservice.Location {
	return append(seed(),
		refservice.Location{Name: "crm.leads", Action: refservice.ActionDelete, Match: map[string]string{"email": "mail", "phone": "tel"},
			Records: []refservice.Record{
				{Key: "l1", Data: map[string]any{"mail": listedEmail, "tel": "555 0100"}},
				{Key: "l2", Data: map[string]any{"mail": bystanderMail, "tel": listedPhone}},
				{Key: "l3", Data: map[string]any{"mail": "carol@example.com", "tel": "+1 415 555 0135"}},
			}},
		refservice.Location{Name: "legal.holds", Action: refservice.ActionRetain, RetainReason: taxLaw, Match: map[string]string{"email": "mail"},
			Records: []refservice.Record{{Key: "h1", Data: map[string]any{"mail": "drop.listed@example.com"}}}},
	)
}

// sweepEnv is a reference service behind a recorder of the calls it gets.
type sweepEnv struct {
	svc    *refservice.Service
	client connector.Client
	mu     sync.Mutex
	paths  []string
	bodies []string
	// failSweepCall, when > 0, answers that /v1/sweep call (1-based) with 500.
	failSweepCall int
}

func startSweep(t *testing.T, opts refservice.Options) *sweepEnv {
	t.Helper()
	opts.Token = token
	e := &sweepEnv{svc: refservice.New(opts)}
	for _, l := range sweepSeed() {
		if err := e.svc.AddLocation(l); err != nil {
			t.Fatal(err)
		}
	}
	inner := http.StripPrefix(mountAt, e.svc)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		e.mu.Lock()
		e.paths = append(e.paths, r.URL.Path)
		e.bodies = append(e.bodies, string(body))
		n := e.count(mountAt + "/v1/sweep")
		fail := e.failSweepCall > 0 && r.URL.Path == mountAt+"/v1/sweep" && n == e.failSweepCall
		e.mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":{"code":"db_down","message":"the database is down"}}`)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := config(srv.URL + mountAt)
	cfg.Secret = []byte(token)
	e.client = newClient(t, httpstore.NewProvider(httpstore.Options{}), cfg)
	return e
}

// count is the number of calls of path so far; e.mu held.
func (e *sweepEnv) count(path string) int {
	n := 0
	for _, p := range e.paths {
		if p == path {
			n++
		}
	}
	return n
}

// dropList is a DROP list of the listed person's email and phone, indexed for one sweep.
func dropList(t *testing.T) *connector.DigestMatch {
	t.Helper()
	salt, err := connector.NewSweepSalt()
	if err != nil {
		t.Fatal(err)
	}
	idx := connector.NewDigestIndex(salt, 2)
	for _, e := range []struct {
		kind  normalize.Kind
		value string
	}{{normalize.Email, listedEmail}, {normalize.Phone, listedPhone}} {
		h, ok := suppression.DropHash(suppression.KindOf(e.kind), e.value)
		if !ok {
			t.Fatalf("no DROP hash of a %s", e.kind)
		}
		idx.Add(e.kind, h)
	}
	return idx.Match()
}

func sweepAll(t *testing.T, e *sweepEnv, opts connector.SweepOptions) ([]connector.SweepHit, *connector.SweepStats, error) {
	t.Helper()
	var hits []connector.SweepHit
	stats, err := e.client.(connector.Sweeper).Sweep(t.Context(), opts, func(h connector.SweepHit) error {
		hits = append(hits, h)
		return nil
	})
	return hits, stats, err
}

func TestSweepFindsListedPeopleByDigestsOnly(t *testing.T) {
	e := startSweep(t, refservice.Options{})
	hits, stats, err := sweepAll(t, e, connector.SweepOptions{Digests: dropList(t), PageSize: 2})
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	got := map[string]connector.SweepHit{}
	for _, h := range hits {
		got[h.Location+"/"+h.Identifier+"/"+h.Value] = h
	}
	want := map[string]bool{
		"crm.leads/email/" + listedEmail:            false,
		"crm.leads/phone/" + listedPhone:            false,
		"legal.holds/email/drop.listed@example.com": true,
	}
	if len(got) != len(want) || len(hits) != len(want) {
		t.Fatalf("hits %d (%v), want %d", len(hits), hitNames(hits), len(want))
	}
	for key, retained := range want {
		h, ok := got[key]
		if !ok {
			t.Fatalf("missing hit %s; got %v", key, hitNames(hits))
		}
		if h.Retained != retained {
			t.Errorf("%s: retained %t, want %t", key, h.Retained, retained)
		}
	}
	// Emails and phones of seed() (6) and of the two locations added (3 + 3 phones of which
	// one, "555 0100", has no ten digits, and 1).
	if stats.Scanned != 12 {
		t.Errorf("scanned %d, want 12", stats.Scanned)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if n := e.count(mountAt + "/v1/sweep"); n < 6 {
		t.Errorf("%d sweep pages for 12 digests in pages of 2, want at least 6", n)
	}
	var resolvedRefs int
	for i, p := range e.paths {
		body := e.bodies[i]
		switch p {
		case mountAt + "/v1/sweep":
			// The list never leaves the operator: no entry's hash, no value.
			for _, v := range []string{listedEmail, "drop.listed", "4155550134"} {
				if strings.Contains(body, v) {
					t.Errorf("a sweep request carries a listed value")
				}
			}
			for _, h := range listHashes() {
				if strings.Contains(body, h) {
					t.Errorf("a sweep request carries a list entry's hash")
				}
			}
		case mountAt + "/v1/sweep/resolve":
			var r struct{ Refs []string }
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatal(err)
			}
			resolvedRefs += len(r.Refs)
		}
	}
	if resolvedRefs != len(want) {
		t.Errorf("%d refs resolved, want only the %d matches", resolvedRefs, len(want))
	}
}

func listHashes() []string {
	var out []string
	for _, v := range []struct {
		kind  suppression.Kind
		value string
	}{{suppression.KindEmail, listedEmail}, {suppression.KindPhone, listedPhone}} {
		h, _ := suppression.DropHash(v.kind, v.value)
		out = append(out, base64.StdEncoding.EncodeToString(h[:]))
	}
	return out
}

func hitNames(hits []connector.SweepHit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.Location+"/"+h.Identifier)
	}
	return out
}

func TestSweepReportsAFailingStore(t *testing.T) {
	e := startSweep(t, refservice.Options{})
	e.failSweepCall = 3
	_, stats, err := sweepAll(t, e, connector.SweepOptions{Digests: dropList(t), PageSize: 2})
	if err == nil {
		t.Fatal("a sweep whose third page failed succeeded")
	}
	if connector.KindOf(err) != connector.KindUnavailable || connector.IsSweepUnsupported(err) {
		t.Errorf("kind %s, want %s: %v", connector.KindOf(err), connector.KindUnavailable, err)
	}
	if stats == nil || stats.Scanned != 4 {
		t.Errorf("stats %+v, want the 4 digests of the two pages read", stats)
	}
}

func TestSweepOfAServiceWithoutTheCapability(t *testing.T) {
	e := startSweep(t, refservice.Options{NoSweep: true})
	_, _, err := sweepAll(t, e, connector.SweepOptions{Digests: dropList(t)})
	if !errors.Is(err, connector.ErrSweepNotOffered) || !connector.IsSweepUnsupported(err) {
		t.Fatalf("err %v, want ErrSweepNotOffered", err)
	}
}

func TestSweepForAKeyedListIsRefused(t *testing.T) {
	e := startSweep(t, refservice.Options{})
	_, _, err := sweepAll(t, e, connector.SweepOptions{Match: func(string, normalize.Kind, string) bool { return true }})
	if !errors.Is(err, connector.ErrSweepNeedsDigests) || !connector.IsSweepUnsupported(err) {
		t.Fatalf("err %v, want ErrSweepNeedsDigests", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := e.count(mountAt + "/v1/sweep"); n != 0 {
		t.Errorf("%d sweep calls for a list that cannot be matched", n)
	}
}

// A service that answers a bystander's value for a matched ref must not make the operator
// erase the bystander.
func TestSweepRefusesAResolvedValueWithoutItsDigest(t *testing.T) {
	list := dropList(t)
	listed, _ := suppression.DropHash(suppression.KindEmail, listedEmail)
	salted := connector.SaltedDigest(list.Salt, listed)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/check":
			_, _ = io.WriteString(w, `{"protocolVersion":"v1","ok":true,"capabilities":["sweep"]}`)
		case "/v1/sweep":
			_, _ = io.WriteString(w, `{"protocolVersion":"v1","nextCursor":"","digests":[{"ref":"r1","location":"crm","identifier":"email","kind":"email","digest":"`+
				base64.StdEncoding.EncodeToString(salted[:])+`"}]}`)
		case "/v1/sweep/resolve":
			_, _ = io.WriteString(w, `{"protocolVersion":"v1","values":[{"ref":"r1","value":"`+bystanderMail+`"}]}`)
		}
	}))
	t.Cleanup(srv.Close)
	cfg := config(srv.URL)
	cfg.Secret = []byte(token)
	cl := newClient(t, httpstore.NewProvider(httpstore.Options{}), cfg)
	visited := 0
	_, err := cl.(connector.Sweeper).Sweep(t.Context(), connector.SweepOptions{Digests: list}, func(connector.SweepHit) error {
		visited++
		return nil
	})
	if err == nil || visited != 0 {
		t.Fatalf("err %v, visited %d: want a protocol error and no hit", err, visited)
	}
	if connector.KindOf(err) != connector.KindInvalid || strings.Contains(err.Error(), bystanderMail) {
		t.Errorf("err %v: want InvalidConfig without the value", err)
	}
}

func TestSaltedDigestIsSHA256OfSaltAndHash(t *testing.T) {
	salt := []byte("0123456789abcdef0123456789abcdef")
	h := sha256.Sum256([]byte("drop.listed@example.com"))
	want := sha256.Sum256(append(append([]byte{}, salt...), h[:]...))
	if connector.SaltedDigest(salt, h) != want {
		t.Fatal("SaltedDigest is not SHA-256(salt || hash)")
	}
}
