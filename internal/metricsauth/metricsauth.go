// Package metricsauth protects the metrics endpoint the way controller-runtime's
// filters.WithAuthenticationAndAuthorization does: the caller's bearer token is checked with a
// TokenReview and its access to the path with a SubjectAccessReview, both answered by the API
// server.
//
// It exists because controller-runtime's filter is built on k8s.io/apiserver's delegating
// authenticator and authorizer, which link k8s.io/apiserver, cel-go, gRPC and OpenTelemetry into
// the manager (about 40 MB of binary, and the resident memory that comes with it) for two API calls
// and a cache. This package needs only client-go, apimachinery and logr; a test fails if that
// changes.
//
// The manager's ClusterRole must allow create on tokenreviews (authentication.k8s.io) and
// subjectaccessreviews (authorization.k8s.io); a scraper needs get on the nonResourceURL /metrics.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Defaults, used where Options leaves a field zero. The TTLs are those controller-runtime's filter
// gives k8s.io/apiserver, so that replacing it changes neither how soon a revoked binding takes
// effect nor how much load a scraper puts on the API server.
const (
	// TokenReview returns no expiry, so a revoked or expired token is honoured for up to this long.
	DefaultAuthenticatedTTL = time.Minute
	// Short, because a scraper whose token was just created or fixed should not wait long; non-zero,
	// so that a misconfigured scraper retrying in a loop costs one TokenReview per period.
	DefaultUnauthenticatedTTL = 10 * time.Second
	DefaultAllowTTL           = 5 * time.Minute
	// Shorter than DefaultAllowTTL: a missing RoleBinding is usually fixed by creating it, and the
	// scraper should start working soon after.
	DefaultDenyTTL = 30 * time.Second
	// Per cache. Legitimate scrapers are a handful of identities; the bound is only there so that
	// tokens or paths chosen by an attacker cannot grow memory without limit.
	DefaultMaxEntries = 1024
	// Per review: a stalled API server must not hold scrape connections (and their goroutines)
	// open indefinitely.
	DefaultTimeout = 10 * time.Second
)

// Options tune New. A zero field takes its Default; a negative TTL turns that kind of caching off.
type Options struct {
	// How long an authenticated token's user is reused without another TokenReview.
	AuthenticatedTTL time.Duration
	// How long a token the API server rejected is rejected without another TokenReview.
	UnauthenticatedTTL time.Duration
	// How long an allowed or denied SubjectAccessReview decision is reused.
	AllowTTL, DenyTTL time.Duration
	// Bound on each cache (authenticated tokens, rejected tokens, decisions).
	MaxEntries int
	// Deadline of each review, derived from the request's context.
	Timeout time.Duration
	// Now is the clock for cache expiry; tests inject one.
	Now func() time.Time
}

// WithAuthenticationAndAuthorization is a metricsserver.Options.FilterProvider: it builds the
// review clients from config and httpClient and returns New's filter with default options.
func WithAuthenticationAndAuthorization(config *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	authn, err := authenticationv1client.NewForConfigAndClient(config, httpClient)
	if err != nil {
		return nil, fmt.Errorf("metricsauth: creating the TokenReview client: %w", err)
	}
	authz, err := authorizationv1client.NewForConfigAndClient(config, httpClient)
	if err != nil {
		return nil, fmt.Errorf("metricsauth: creating the SubjectAccessReview client: %w", err)
	}
	return New(authn.TokenReviews(), authz.SubjectAccessReviews(), Options{}), nil
}

// New returns a filter that authenticates requests with authn and authorizes them with authz.
// Every handler the filter wraps shares one set of caches.
func New(authn authenticationv1client.TokenReviewInterface, authz authorizationv1client.SubjectAccessReviewInterface, opts Options) metricsserver.Filter {
	return newGate(authn, authz, opts).filter
}

func newGate(authn authenticationv1client.TokenReviewInterface, authz authorizationv1client.SubjectAccessReviewInterface, opts Options) *gate {
	opts.AuthenticatedTTL = orDefault(opts.AuthenticatedTTL, DefaultAuthenticatedTTL)
	opts.UnauthenticatedTTL = orDefault(opts.UnauthenticatedTTL, DefaultUnauthenticatedTTL)
	opts.AllowTTL = orDefault(opts.AllowTTL, DefaultAllowTTL)
	opts.DenyTTL = orDefault(opts.DenyTTL, DefaultDenyTTL)
	opts.Timeout = orDefault(opts.Timeout, DefaultTimeout)
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	g := &gate{
		authn: authn,
		authz: authz,
		opts:  opts,
		// Rejected tokens have a cache of their own so that a flood of garbage tokens evicts only
		// other garbage, never the scrapers' entries.
		users:     newTTLCache[[sha256.Size]byte, authenticationv1.UserInfo](opts.MaxEntries, opts.Now),
		rejected:  newTTLCache[[sha256.Size]byte, string](opts.MaxEntries, opts.Now),
		decisions: newTTLCache[[sha256.Size]byte, decision](opts.MaxEntries, opts.Now),
	}
	return g
}

func (g *gate) filter(log logr.Logger, handler http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		g.serve(log, handler, w, req)
	}), nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

type gate struct {
	authn authenticationv1client.TokenReviewInterface
	authz authorizationv1client.SubjectAccessReviewInterface
	opts  Options

	// Keyed by the token's SHA-256, so that the tokens themselves are not kept in memory (where a
	// heap dump or a debugger would find them) longer than a request.
	users    *ttlCache[[sha256.Size]byte, authenticationv1.UserInfo]
	rejected *ttlCache[[sha256.Size]byte, string]
	// Keyed by a digest of the user and the request's attributes; see decisionKey.
	decisions *ttlCache[[sha256.Size]byte, decision]
}

type decision struct {
	allowed bool
	reason  string
}

func (g *gate) serve(log logr.Logger, next http.Handler, w http.ResponseWriter, req *http.Request) {
	token, ok := bearerToken(req.Header.Get("Authorization"))
	if !ok {
		log.V(4).Info("Authentication failed", "reason", "no bearer token")
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	user, authenticated, reason, err := g.authenticate(req.Context(), token)
	if err != nil {
		log.Error(redact(err, token), "Authentication failed")
		http.Error(w, "Authentication failed", http.StatusInternalServerError)
		return
	}
	if !authenticated {
		log.V(4).Info("Authentication failed", "reason", redactString(reason, token))
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	// As k8s.io/apiserver's bearer-token authenticator does: the wrapped handler has no use for the
	// token, and anything it or its middleware logs about the request can then not leak it.
	req.Header.Del("Authorization")

	d, err := g.authorize(req.Context(), user, req.URL.Path, strings.ToLower(req.Method))
	if err != nil {
		msg := fmt.Sprintf("Authorization for user %s failed", user.Username)
		log.Error(err, msg)
		http.Error(w, msg, http.StatusInternalServerError)
		return
	}
	if !d.allowed {
		msg := fmt.Sprintf("Authorization denied for user %s", user.Username)
		log.V(4).Info(msg, "reason", d.reason)
		http.Error(w, msg, http.StatusForbidden)
		return
	}
	next.ServeHTTP(w, req)
}

// bearerToken extracts the token of an "Authorization: Bearer <token>" header. The scheme is
// case-insensitive (RFC 7235); a token with whitespace inside is malformed rather than truncated,
// so that nothing but the exact credential is ever sent for review.
func bearerToken(header string) (string, bool) {
	header = strings.TrimSpace(header)
	i := strings.IndexAny(header, " \t")
	if i < 0 || !strings.EqualFold(header[:i], "bearer") {
		return "", false
	}
	token := strings.TrimSpace(header[i+1:])
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// authenticate returns the token's user, or authenticated false and the API server's reason.
// Errors are not cached: a blip of the API server must not lock scrapers out for a TTL.
func (g *gate) authenticate(ctx context.Context, token string) (user authenticationv1.UserInfo, authenticated bool, reason string, err error) {
	key := sha256.Sum256([]byte(token))
	// Taken before the review, so that an entry never outlives its TTL counted from when the API
	// server could last have changed its mind.
	if u, ok := g.users.get(key); ok {
		return u, true, "", nil
	}
	if r, ok := g.rejected.get(key); ok {
		return user, false, r, nil
	}

	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	// Spec.Audiences is left empty: the API server then checks the token against its own
	// audiences, as k8s.io/apiserver's delegating authenticator does when none are configured.
	review, err := g.authn.Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		return user, false, "", fmt.Errorf("creating a TokenReview: %w", err)
	}
	if !review.Status.Authenticated {
		reason = review.Status.Error
		if reason == "" {
			reason = "token not authenticated"
		}
		g.rejected.set(key, reason, g.opts.UnauthenticatedTTL)
		return user, false, reason, nil
	}
	g.users.set(key, review.Status.User, g.opts.AuthenticatedTTL)
	return review.Status.User, true, "", nil
}

// authorize asks whether user may use verb on the non-resource path.
func (g *gate) authorize(ctx context.Context, user authenticationv1.UserInfo, path, verb string) (decision, error) {
	key := decisionKey(user, path, verb)
	if d, ok := g.decisions.get(key); ok {
		return d, nil
	}

	var extra map[string]authorizationv1.ExtraValue
	if len(user.Extra) > 0 {
		extra = make(map[string]authorizationv1.ExtraValue, len(user.Extra))
		for k, v := range user.Extra {
			extra[k] = authorizationv1.ExtraValue(v)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	review, err := g.authz.Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:                  user.Username,
			UID:                   user.UID,
			Groups:                user.Groups,
			Extra:                 extra,
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return decision{}, fmt.Errorf("creating a SubjectAccessReview: %w", err)
	}
	d := decision{allowed: review.Status.Allowed, reason: review.Status.Reason}
	switch {
	case d.allowed:
		g.decisions.set(key, d, g.opts.AllowTTL)
	case review.Status.EvaluationError == "":
		g.decisions.set(key, d, g.opts.DenyTTL)
	default:
		// A denial with an evaluation error means some authorizer failed rather than said no: it is
		// answered as a denial but, like any error, not cached.
		d.reason = strings.TrimSpace(d.reason + " (evaluation error: " + review.Status.EvaluationError + ")")
	}
	return d, nil
}

// decisionKey digests everything a SubjectAccessReview is asked about. Fields are length-prefixed
// so that no two different inputs encode alike (user "a,b" with no groups vs. user "a" in group
// "b"), and extra's keys are sorted because map order is random. Digesting keeps entries small
// however many groups a user has.
func decisionKey(user authenticationv1.UserInfo, path, verb string) [sha256.Size]byte {
	h := sha256.New()
	writeString(h, user.Username)
	writeString(h, user.UID)
	writeLen(h, len(user.Groups))
	for _, g := range user.Groups {
		writeString(h, g)
	}
	keys := make([]string, 0, len(user.Extra))
	for k := range user.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	writeLen(h, len(keys))
	for _, k := range keys {
		writeString(h, k)
		writeLen(h, len(user.Extra[k]))
		for _, v := range user.Extra[k] {
			writeString(h, v)
		}
	}
	writeString(h, path)
	writeString(h, verb)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func writeLen(h hash.Hash, n int) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	_, _ = h.Write(b[:])
}

func writeString(h hash.Hash, s string) {
	writeLen(h, len(s))
	_, _ = h.Write([]byte(s))
}

// redact keeps the token out of logs should an error ever quote it (a proxy's or webhook's message
// echoing the request, say). The wrapped error is dropped: a caller unwrapping it could find the
// token again.
func redact(err error, token string) error {
	if !strings.Contains(err.Error(), token) {
		return err
	}
	return errors.New(redactString(err.Error(), token))
}

func redactString(s, token string) string {
	return strings.ReplaceAll(s, token, "[redacted]")
}
