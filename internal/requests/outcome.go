package requests

import (
	"errors"
	"time"

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
	// Message is safe to show: identifiers scrubbed, no credentials.
	Message string
}

// Classify turns a store operation's error into what the request's status shows.
func Classify(err error, ids connector.Identifiers) Failure {
	msg := err.Error()
	if ids != nil {
		msg = ids.Scrub(msg)
	}
	if len(msg) > 512 {
		msg = msg[:509] + "..."
	}
	var gone *stores.GoneError
	switch {
	case errors.As(err, &gone), stores.IsSecretError(err):
		return Failure{Reason: privacyv1alpha1.ReasonStoreFailed, Message: msg}
	case connector.KindOf(err) == connector.KindEgressDenied:
		return Failure{Reason: privacyv1alpha1.ReasonEgressDenied, Message: msg}
	case connector.IsTransient(err):
		return Failure{Transient: true, Reason: privacyv1alpha1.ReasonStoreUnavailable, Message: msg}
	default:
		return Failure{Reason: privacyv1alpha1.ReasonStoreFailed, Message: msg}
	}
}

// NextAttempt is when to try a store again after attempts failures.
func NextAttempt(now time.Time, attempts int32, transient bool) time.Time {
	if !transient {
		return now.Add(PermanentBackoff)
	}
	d := BaseBackoff
	for i := int32(1); i < attempts && d < MaxBackoff; i++ {
		d *= 2
	}
	return now.Add(min(d, MaxBackoff))
}
