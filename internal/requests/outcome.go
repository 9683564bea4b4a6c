package requests

import (
	"errors"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/stores"
)

// Retry timing. Transient failures back off exponentially; failures the store's owner must fix are
// retried slowly, so that a corrected DataStore or Secret lets the request finish by itself.
var (
	BaseBackoff      = 5 * time.Second
	MaxBackoff       = 5 * time.Minute
	PermanentBackoff = 10 * time.Minute
)

// Failure is a classified store failure.
type Failure struct {
	// Transient failures (unreachable, timeouts, refused credentials) show the store as Retrying.
	Transient bool
	// Reason is the condition reason: StoreUnavailable or StoreFailed.
	Reason string
	// Message is safe to show in status and events: built only from the error's kind, operation,
	// the store's code and the location (or the operator's own text about a missing store or
	// Secret), never from driver text.
	Message string
	// Detail is the full error text, scrubbed of the identifiers in every form a driver may echo
	// them in, for a debug (V(1)) log only: it may still name hosts, users or databases.
	Detail string
}

// maxMessage caps what status and events show of one failure.
const maxMessage = 512

// Classify turns a store operation's error into what the request's status shows.
func Classify(err error, ids connector.Identifiers) Failure {
	var gone *stores.GoneError
	operatorText := errors.As(err, &gone) || stores.IsSecretError(err)
	msg := connector.Summary(err)
	if operatorText {
		// Written by the operator from the request's and store's names; no driver was involved.
		msg = err.Error()
	}
	f := Failure{Reason: privacyv1alpha1.ReasonStoreFailed, Message: truncate(connector.ScrubForms(msg, ids), maxMessage),
		Detail: truncate(connector.ScrubForms(err.Error(), ids), 4*maxMessage)}
	switch {
	case operatorText:
	case connector.KindOf(err) == connector.KindEgressDenied:
		f.Reason = privacyv1alpha1.ReasonEgressDenied
	case connector.IsTransient(err):
		f.Transient, f.Reason = true, privacyv1alpha1.ReasonStoreUnavailable
	}
	return f
}

// truncate cuts s to at most limit bytes on a rune boundary, marking the cut.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Jitter returns a number in [0, 1) that spreads retries: thousands of requests failing on one
// store at the same moment must not all retry it at the same moment when it recovers. Tests may
// replace it, before anything calls NextAttempt, to make retry times deterministic.
var Jitter = rand.Float64

// jitterFraction is how far a retry may move either way from its nominal backoff.
const jitterFraction = 0.2

// NextAttempt is when to try a store again after attempts failures: the exponential (or, for a
// permanent failure, the slow) backoff, moved at random by up to ±20%.
func NextAttempt(now time.Time, attempts int32, transient bool) time.Time {
	return now.Add(spread(backoff(attempts, transient), Jitter()))
}

func backoff(attempts int32, transient bool) time.Duration {
	if !transient {
		return PermanentBackoff
	}
	d := BaseBackoff
	for i := int32(1); i < attempts && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// spread moves d uniformly within ±jitterFraction of itself; r is in [0, 1).
func spread(d time.Duration, r float64) time.Duration {
	return time.Duration(float64(d) * (1 - jitterFraction + 2*jitterFraction*r))
}
