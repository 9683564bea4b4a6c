package metricsauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	k8stesting "k8s.io/client-go/testing"
)

// The unit tests drive the gate through client-go's fake clientset, whose reactors answer reviews
// and count them; TestAgainstAPIServer checks the same behaviour against a real kube-apiserver.

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer records everything a logr.Logger writes, at every verbosity.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		fmt.Fprintln(&b.buf, prefix, args)
	}, funcr.Options{Verbosity: 10})
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeAPI answers TokenReviews from tokens (token -> user; absent means unauthenticated) and
// SubjectAccessReviews with allow(spec), unless the corresponding error is set.
type fakeAPI struct {
	clientset *fake.Clientset

	mu       sync.Mutex
	tokens   map[string]authenticationv1.UserInfo
	allow    func(authorizationv1.SubjectAccessReviewSpec) bool
	authnErr error
	authzErr error
	sars     []authorizationv1.SubjectAccessReviewSpec

	tokenReviews, accessReviews atomic.Int32
}

func newFakeAPI() *fakeAPI {
	f := &fakeAPI{
		clientset: fake.NewClientset(),
		tokens:    map[string]authenticationv1.UserInfo{},
		allow: func(spec authorizationv1.SubjectAccessReviewSpec) bool {
			return spec.User == "scraper" && spec.NonResourceAttributes.Path == "/metrics" && spec.NonResourceAttributes.Verb == "get"
		},
	}
	f.clientset.PrependReactor("create", "tokenreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		f.tokenReviews.Add(1)
		review := action.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview).DeepCopy()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.authnErr != nil {
			return true, nil, f.authnErr
		}
		if u, ok := f.tokens[review.Spec.Token]; ok {
			review.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: u}
		} else {
			review.Status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, review, nil
	})
	f.clientset.PrependReactor("create", "subjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		f.accessReviews.Add(1)
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.sars = append(f.sars, review.Spec)
		if f.authzErr != nil {
			return true, nil, f.authzErr
		}
		review.Status.Allowed = f.allow(review.Spec)
		if !review.Status.Allowed {
			review.Status.Reason = "no RBAC policy matched"
		}
		return true, review, nil
	})
	return f
}

func (f *fakeAPI) set(fn func(f *fakeAPI)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeAPI) counts() (tokenReviews, accessReviews int) {
	return int(f.tokenReviews.Load()), int(f.accessReviews.Load())
}

type harness struct {
	api   *fakeAPI
	clock *fakeClock
	gate  *gate
	logs  *logBuffer
	h     http.Handler
	// The Authorization header the wrapped handler saw last.
	seenAuth atomic.Value
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	hs := &harness{api: newFakeAPI(), clock: &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, logs: &logBuffer{}}
	opts.Now = hs.clock.Now
	hs.gate = newGate(hs.api.clientset.AuthenticationV1().TokenReviews(), hs.api.clientset.AuthorizationV1().SubjectAccessReviews(), opts)
	h, err := hs.gate.filter(hs.logs.logger(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.seenAuth.Store(r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, "metrics body")
	}))
	if err != nil {
		t.Fatal(err)
	}
	hs.h = h
	return hs
}

// do serves one request; authorization is the raw header value ("" for none).
func (hs *harness) do(method, path, authorization string) (int, string) {
	req := httptest.NewRequest(method, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

func (hs *harness) expect(t *testing.T, method, path, authorization string, wantCode int, wantBody string) {
	t.Helper()
	code, body := hs.do(method, path, authorization)
	if code != wantCode || body != wantBody {
		t.Fatalf("%s %s: got %d %q, want %d %q", method, path, code, body, wantCode, wantBody)
	}
}

func (hs *harness) expectCounts(t *testing.T, tokenReviews, accessReviews int) {
	t.Helper()
	tr, sar := hs.api.counts()
	if tr != tokenReviews || sar != accessReviews {
		t.Fatalf("reviews made: %d TokenReviews and %d SubjectAccessReviews, want %d and %d", tr, sar, tokenReviews, accessReviews)
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"  Bearer   abc  ", "abc", true},
		{"Bearer\tabc", "abc", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"Basic YWxhZGRpbjpvcGVuc2VzYW1l", "", false},
		{"Bearerabc", "", false},
		{"abc", "", false},
		{"Bearer abc def", "", false},
		{"Token abc", "", false},
	} {
		token, ok := bearerToken(tc.header)
		if token != tc.token || ok != tc.ok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tc.header, token, ok, tc.token, tc.ok)
		}
	}
}

func TestNoOrMalformedHeaderMakesNoReview(t *testing.T) {
	hs := newHarness(t, Options{})
	for _, header := range []string{"", "Bearer", "Bearer  ", "Basic Zm9vOmJhcg==", "tok"} {
		hs.expect(t, "GET", "/metrics", header, http.StatusUnauthorized, "Unauthorized")
	}
	hs.expectCounts(t, 0, 0)
}

func TestAuthenticationAndAllowCaching(t *testing.T) {
	hs := newHarness(t, Options{})
	hs.api.tokens["tok-scraper"] = authenticationv1.UserInfo{Username: "scraper"}

	hs.expect(t, "GET", "/metrics", "Bearer tok-scraper", http.StatusOK, "metrics body")
	hs.expectCounts(t, 1, 1)
	if got := hs.seenAuth.Load(); got != "" {
		t.Errorf("the wrapped handler saw Authorization %q; the filter should remove it", got)
	}
	hs.clock.Advance(59 * time.Second)
	hs.expect(t, "GET", "/metrics", "bearer tok-scraper", http.StatusOK, "metrics body")
	hs.expectCounts(t, 1, 1)

	// The authentication TTL (1 minute) has passed, the allow TTL (5 minutes) has not.
	hs.clock.Advance(2 * time.Second)
	hs.expect(t, "GET", "/metrics", "Bearer tok-scraper", http.StatusOK, "metrics body")
	hs.expectCounts(t, 2, 1)

	hs.clock.Advance(5 * time.Minute)
	hs.expect(t, "GET", "/metrics", "Bearer tok-scraper", http.StatusOK, "metrics body")
	hs.expectCounts(t, 3, 2)
}

func TestUnauthenticatedIsCachedBriefly(t *testing.T) {
	hs := newHarness(t, Options{})
	hs.expect(t, "GET", "/metrics", "Bearer garbage", http.StatusUnauthorized, "Unauthorized")
	hs.expect(t, "GET", "/metrics", "Bearer garbage", http.StatusUnauthorized, "Unauthorized")
	hs.expectCounts(t, 1, 0)

	// A token that becomes valid is accepted once the negative entry expires.
	hs.api.set(func(f *fakeAPI) { f.tokens["garbage"] = authenticationv1.UserInfo{Username: "scraper"} })
	hs.clock.Advance(9 * time.Second)
	hs.expect(t, "GET", "/metrics", "Bearer garbage", http.StatusUnauthorized, "Unauthorized")
	hs.clock.Advance(time.Second + time.Nanosecond) // past the TTL
	hs.expect(t, "GET", "/metrics", "Bearer garbage", http.StatusOK, "metrics body")
	hs.expectCounts(t, 2, 1)
}

func TestNegativeTTLDisablesCaching(t *testing.T) {
	hs := newHarness(t, Options{UnauthenticatedTTL: -1, AuthenticatedTTL: -1, AllowTTL: -1})
	hs.api.tokens["tok"] = authenticationv1.UserInfo{Username: "scraper"}
	for range 3 {
		hs.expect(t, "GET", "/metrics", "Bearer garbage", http.StatusUnauthorized, "Unauthorized")
		hs.expect(t, "GET", "/metrics", "Bearer tok", http.StatusOK, "metrics body")
	}
	hs.expectCounts(t, 6, 3)
}

func TestDenyCaching(t *testing.T) {
	hs := newHarness(t, Options{})
	hs.api.tokens["tok-other"] = authenticationv1.UserInfo{Username: "other"}
	hs.api.tokens["tok-scraper"] = authenticationv1.UserInfo{Username: "scraper"}

	hs.expect(t, "GET", "/metrics", "Bearer tok-other", http.StatusForbidden, "Authorization denied for user other")
	hs.expect(t, "GET", "/metrics", "Bearer tok-other", http.StatusForbidden, "Authorization denied for user other")
	hs.expectCounts(t, 1, 1)

	// Decisions are per path and verb.
	hs.expect(t, "GET", "/other", "Bearer tok-scraper", http.StatusForbidden, "Authorization denied for user scraper")
	hs.expect(t, "POST", "/metrics", "Bearer tok-scraper", http.StatusForbidden, "Authorization denied for user scraper")
	hs.expect(t, "GET", "/metrics", "Bearer tok-scraper", http.StatusOK, "metrics body")
	hs.expectCounts(t, 2, 4)

	// Granting access takes effect when the 30 s deny entry expires.
	hs.api.set(func(f *fakeAPI) {
		f.allow = func(spec authorizationv1.SubjectAccessReviewSpec) bool {
			return spec.NonResourceAttributes.Path == "/metrics"
		}
	})
	hs.clock.Advance(29 * time.Second)
	hs.expect(t, "GET", "/metrics", "Bearer tok-other", http.StatusForbidden, "Authorization denied for user other")
	hs.expectCounts(t, 2, 4)
	hs.clock.Advance(time.Second + time.Nanosecond) // past the TTL
	hs.expect(t, "GET", "/metrics", "Bearer tok-other", http.StatusOK, "metrics body")
	hs.expectCounts(t, 2, 5)
}

func TestDecisionsAreKeyedOnTheWholeUser(t *testing.T) {
	hs := newHarness(t, Options{})
	hs.api.allow = func(spec authorizationv1.SubjectAccessReviewSpec) bool {
		return len(spec.Groups) == 1 && spec.Groups[0] == "scrapers"
	}
	hs.api.tokens["a"] = authenticationv1.UserInfo{Username: "u", Groups: []string{"scrapers"}}
	hs.api.tokens["b"] = authenticationv1.UserInfo{Username: "u", Groups: []string{"others"}}
	hs.api.tokens["c"] = authenticationv1.UserInfo{Username: "u", Groups: []string{"scrapers"}, UID: "1"}
	hs.api.tokens["d"] = authenticationv1.UserInfo{Username: "u", Groups: []string{"scrapers"}, Extra: map[string]authenticationv1.ExtraValue{"k": {"v"}}}
	hs.expect(t, "GET", "/metrics", "Bearer a", http.StatusOK, "metrics body")
	hs.expect(t, "GET", "/metrics", "Bearer b", http.StatusForbidden, "Authorization denied for user u")
	hs.expect(t, "GET", "/metrics", "Bearer c", http.StatusOK, "metrics body")
	hs.expect(t, "GET", "/metrics", "Bearer d", http.StatusOK, "metrics body")
	hs.expectCounts(t, 4, 4)

	if decisionKey(authenticationv1.UserInfo{Username: "a", Groups: []string{"b"}}, "/metrics", "get") ==
		decisionKey(authenticationv1.UserInfo{Username: "ab"}, "/metrics", "get") {
		t.Error("decisionKey confuses fields")
	}
	extra := func(keys ...string) map[string]authenticationv1.ExtraValue {
		m := map[string]authenticationv1.ExtraValue{}
		for _, k := range keys {
			m[k] = authenticationv1.ExtraValue{k + "-value"}
		}
		return m
	}
	want := decisionKey(authenticationv1.UserInfo{Username: "u", Extra: extra("a", "b", "c", "d", "e")}, "/metrics", "get")
	for range 20 {
		if decisionKey(authenticationv1.UserInfo{Username: "u", Extra: extra("e", "d", "c", "b", "a")}, "/metrics", "get") != want {
			t.Fatal("decisionKey depends on map order")
		}
	}
}

func TestSubjectAccessReviewSpec(t *testing.T) {
	hs := newHarness(t, Options{})
	hs.api.allow = func(authorizationv1.SubjectAccessReviewSpec) bool { return true }
	hs.api.tokens["tok"] = authenticationv1.UserInfo{
		Username: "system:serviceaccount:ns:scraper",
		UID:      "uid-1",
		Groups:   []string{"system:serviceaccounts", "system:authenticated"},
		Extra:    map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/credential-id": {"JTI=1"}},
	}
	hs.expect(t, "HEAD", "/metrics/extra", "Bearer tok", http.StatusOK, "metrics body")
	want := authorizationv1.SubjectAccessReviewSpec{
		User:                  "system:serviceaccount:ns:scraper",
		UID:                   "uid-1",
		Groups:                []string{"system:serviceaccounts", "system:authenticated"},
		Extra:                 map[string]authorizationv1.ExtraValue{"authentication.kubernetes.io/credential-id": {"JTI=1"}},
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics/extra", Verb: "head"},
	}
	if len(hs.api.sars) != 1 || !reflect.DeepEqual(hs.api.sars[0], want) {
		t.Fatalf("SubjectAccessReview specs: %+v, want [%+v]", hs.api.sars, want)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	hs := newHarness(t, Options{})
	hs.api.tokens["tok"] = authenticationv1.UserInfo{Username: "scraper"}

	hs.api.set(func(f *fakeAPI) { f.authnErr = errors.New("connection refused") })
	hs.expect(t, "GET", "/metrics", "Bearer tok", http.StatusInternalServerError, "Authentication failed")
	hs.expect(t, "GET", "/metrics", "Bearer tok", http.StatusInternalServerError, "Authentication failed")
	hs.expectCounts(t, 2, 0)

	hs.api.set(func(f *fakeAPI) { f.authnErr, f.authzErr = nil, errors.New("connection refused") })
	hs.expect(t, "GET", "/metrics", "Bearer tok", http.StatusInternalServerError, "Authorization for user scraper failed")
	hs.expect(t, "GET", "/metrics", "Bearer tok", http.StatusInternalServerError, "Authorization for user scraper failed")
	hs.expectCounts(t, 3, 2)

	hs.api.set(func(f *fakeAPI) { f.authzErr = nil })
	hs.expect(t, "GET", "/metrics", "Bearer tok", http.StatusOK, "metrics body")
	hs.expectCounts(t, 3, 3)

	if !strings.Contains(hs.logs.String(), "connection refused") {
		t.Errorf("the errors were not logged:\n%s", hs.logs.String())
	}
}

func TestEvaluationErrorDenialIsNotCached(t *testing.T) {
	hs := newHarness(t, Options{})
	hs.api.tokens["tok"] = authenticationv1.UserInfo{Username: "scraper"}
	hs.api.clientset.PrependReactor("create", "subjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		hs.api.accessReviews.Add(1)
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		review.Status.EvaluationError = "webhook unavailable"
		return true, review, nil
	})
	hs.expect(t, "GET", "/metrics", "Bearer tok", http.StatusForbidden, "Authorization denied for user scraper")
	hs.expect(t, "GET", "/metrics", "Bearer tok", http.StatusForbidden, "Authorization denied for user scraper")
	hs.expectCounts(t, 1, 2)
}

func TestTokenIsNeverLogged(t *testing.T) {
	const token = "s3cr3t-token-value"
	hs := newHarness(t, Options{})
	// An API server (or a proxy in front of it) whose messages quote the token.
	hs.api.clientset.PrependReactor("create", "tokenreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview).DeepCopy()
		if strings.HasPrefix(review.Spec.Token, "err-") {
			return true, nil, fmt.Errorf("proxy rejected request with token %s", review.Spec.Token)
		}
		review.Status.Error = "token " + review.Spec.Token + " is malformed"
		return true, review, nil
	})
	hs.expect(t, "GET", "/metrics", "Bearer err-"+token, http.StatusInternalServerError, "Authentication failed")
	hs.expect(t, "GET", "/metrics", "Bearer "+token, http.StatusUnauthorized, "Unauthorized")
	logs := hs.logs.String()
	if strings.Contains(logs, token) {
		t.Fatalf("the token was logged:\n%s", logs)
	}
	if strings.Count(logs, "[redacted]") != 2 {
		t.Fatalf("expected both messages logged with the token redacted:\n%s", logs)
	}
}

// deadlineRecorder records the deadline of the context each review is made with.
type deadlineRecorder struct {
	authenticationv1client.TokenReviewInterface
	deadline time.Time
	ok       bool
}

func (d *deadlineRecorder) Create(ctx context.Context, tr *authenticationv1.TokenReview, opts metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	d.deadline, d.ok = ctx.Deadline()
	return d.TokenReviewInterface.Create(ctx, tr, opts)
}

func TestReviewsHaveADeadline(t *testing.T) {
	api := newFakeAPI()
	rec := &deadlineRecorder{TokenReviewInterface: api.clientset.AuthenticationV1().TokenReviews()}
	h, err := New(rec, api.clientset.AuthorizationV1().SubjectAccessReviews(), Options{})(logr.Discard(), http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer x")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !rec.ok || rec.deadline.Before(before.Add(DefaultTimeout)) || rec.deadline.After(time.Now().Add(DefaultTimeout)) {
		t.Fatalf("TokenReview deadline %v (set: %v), want about %v from now", rec.deadline, rec.ok, DefaultTimeout)
	}

	// The request's own cancellation reaches the review too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req = httptest.NewRequestWithContext(ctx, "GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer y")
	var ctxErr error
	h, _ = New(tokenReviewFunc(func(ctx context.Context) error { ctxErr = ctx.Err(); return ctxErr }),
		api.clientset.AuthorizationV1().SubjectAccessReviews(), Options{})(logr.Discard(), http.NotFoundHandler())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if !errors.Is(ctxErr, context.Canceled) || w.Code != http.StatusInternalServerError {
		t.Fatalf("review context error %v, response %d", ctxErr, w.Code)
	}
}

type tokenReviewFunc func(ctx context.Context) error

func (f tokenReviewFunc) Create(ctx context.Context, _ *authenticationv1.TokenReview, _ metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	return nil, f(ctx)
}

func TestCachesAreBounded(t *testing.T) {
	hs := newHarness(t, Options{MaxEntries: 8})
	hs.api.tokens["tok"] = authenticationv1.UserInfo{Username: "scraper"}
	hs.expect(t, "GET", "/metrics", "Bearer tok", http.StatusOK, "metrics body")
	for i := range 100 {
		hs.expect(t, "GET", "/metrics", fmt.Sprintf("Bearer random-%d", i), http.StatusUnauthorized, "Unauthorized")
		hs.expect(t, "GET", fmt.Sprintf("/metrics/%d", i), "Bearer tok", http.StatusForbidden, "Authorization denied for user scraper")
	}
	if n := hs.gate.rejected.len(); n > 8 {
		t.Errorf("%d rejected tokens cached, want at most 8", n)
	}
	if n := hs.gate.decisions.len(); n > 8 {
		t.Errorf("%d decisions cached, want at most 8", n)
	}
	// The flood of garbage tokens did not push the scraper's token out.
	tr, _ := hs.api.counts()
	hs.expect(t, "GET", "/metrics", "Bearer tok", http.StatusOK, "metrics body")
	if tr2, _ := hs.api.counts(); tr2 != tr {
		t.Errorf("the scraper's token was evicted by garbage tokens")
	}
}

func TestCacheEviction(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newTTLCache[string, int](3, func() time.Time { return now })
	c.set("short", 1, time.Second)
	c.set("long", 2, time.Hour)
	c.set("medium", 3, time.Minute)
	c.set("uncached", 9, 0)
	if _, ok := c.get("uncached"); ok || c.len() != 3 {
		t.Fatalf("a zero TTL cached the entry: %d entries", c.len())
	}

	// Full: the least recently used entry goes ("long" was just read, so "medium" is oldest).
	now = now.Add(2 * time.Second)
	if _, ok := c.get("short"); ok {
		t.Error("entry served after its TTL")
	}
	if _, ok := c.get("long"); !ok {
		t.Fatal("live entry missing")
	}
	c.set("new", 4, time.Hour)
	c.set("newer", 5, time.Hour)
	for key, want := range map[string]bool{"long": true, "medium": false, "new": true, "newer": true} {
		if _, ok := c.get(key); ok != want {
			t.Errorf("after eviction, %q cached: %v, want %v", key, ok, want)
		}
	}
	// Overwriting a key evicts nothing.
	c.set("long", 6, time.Hour)
	if v, _ := c.get("long"); v != 6 || c.len() != 3 {
		t.Errorf("overwrite: value %d, %d entries", v, c.len())
	}
	// An entry is not served past its TTL.
	now = now.Add(time.Hour + time.Nanosecond)
	if _, ok := c.get("new"); ok {
		t.Error("entry served at its expiry time")
	}
}

func TestConcurrentRequests(t *testing.T) {
	hs := newHarness(t, Options{MaxEntries: 16})
	for i := range 4 {
		hs.api.tokens[fmt.Sprintf("tok-%d", i)] = authenticationv1.UserInfo{Username: "scraper"}
	}
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := range 32 {
		wg.Go(func() {
			for j := range 50 {
				if j%10 == 0 {
					hs.clock.Advance(time.Second)
				}
				code, _ := hs.do("GET", "/metrics", fmt.Sprintf("Bearer tok-%d", (i+j)%4))
				if code != http.StatusOK {
					failures.Add(1)
				}
				if code, _ := hs.do("GET", "/metrics", fmt.Sprintf("Bearer junk-%d-%d", i, j)); code != http.StatusUnauthorized {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d requests got the wrong answer", n)
	}
}
