package requests

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// DefaultStoreConcurrency bounds a fan-out whose limit is not set.
const DefaultStoreConcurrency = 8

// FanOut runs one operation on several stores of a request at once and records each store's
// failure in its progress: the same due filter, client lookup, classification, attempts, backoff
// and Retrying/Failed for deletion and access requests.
type FanOut struct {
	// Now is the reconcile's time.
	Now time.Time
	// Limit bounds how many stores are worked on at once (DefaultStoreConcurrency when 0).
	Limit int
	// Identifiers are scrubbed from failure messages.
	Identifiers connector.Identifiers
	// Client returns the client of the i-th store and, when the client is leased from a pool, the
	// function that ends the lease once the operation is done (nil when there is nothing to end).
	Client func(ctx context.Context, i int) (connector.Client, func(), error)
	// KeepPhaseOnFailure leaves a failing store's phase as it is: during re-verification a store
	// that could not be asked stays Verified (or Reappeared) and is asked again after the backoff.
	KeepPhaseOnFailure bool
}

// StoreResult is one store's outcome in a fan-out.
type StoreResult[R any] struct {
	// Ran is false for a store that was not due.
	Ran bool
	// Value is what the operation returned.
	Value R
	// Failure is set when the store could not be reached or the operation failed; the store's
	// progress records it.
	Failure *Failure
	// NewlyFailing is true when the failure changed the store's phase (worth an event).
	NewlyFailing bool
}

// Run calls op for every due store, at most Limit at once. op(i) may change only the i-th store's
// status, and the results are collected per store, so nothing is shared between the goroutines;
// the caller aggregates the returned slice (indexed like progress) after the wait.
func Run[R any](ctx context.Context, f FanOut, progress []*privacyv1alpha1.StoreProgress, due func(i int) bool,
	op func(ctx context.Context, i int, cl connector.Client) (R, error)) []StoreResult[R] {
	results := make([]StoreResult[R], len(progress))
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultStoreConcurrency
	}
	var g errgroup.Group
	g.SetLimit(limit)
	for i := range progress {
		if !due(i) {
			continue
		}
		g.Go(func() error {
			res := &results[i]
			res.Ran = true
			cl, release, err := f.Client(ctx, i)
			if err == nil {
				res.Value, err = op(ctx, i, cl)
				if release != nil {
					release()
				}
			}
			if err != nil {
				failure, changed := f.recordFailure(progress[i], err)
				// The full text may help whoever runs the operator; it never goes into status.
				log.FromContext(ctx).V(1).Info("store operation failed", "store", i, "detail", failure.Detail)
				res.Failure, res.NewlyFailing = &failure, changed
			}
			// Errors are the stores', recorded above: none stops the others.
			return nil
		})
	}
	_ = g.Wait()
	return results
}

// recordFailure classifies err and schedules the next attempt at the store's current step.
func (f FanOut) recordFailure(p *privacyv1alpha1.StoreProgress, err error) (Failure, bool) {
	failure := Classify(err, f.Identifiers)
	p.Attempts++
	p.NextAttemptAt = timeOf(NextAttempt(f.Now, p.Attempts, failure.Transient))
	p.Message = failure.Message
	if f.KeepPhaseOnFailure {
		return failure, false
	}
	previous := p.Phase
	if failure.Transient {
		p.Phase = privacyv1alpha1.StoreRetrying
	} else {
		p.Phase = privacyv1alpha1.StoreFailed
	}
	return failure, previous != p.Phase
}

// IsBackingOff reports whether a store waits for its next attempt at now.
func IsBackingOff(p *privacyv1alpha1.StoreProgress, now time.Time) bool {
	return p.NextAttemptAt != nil && now.Before(p.NextAttemptAt.Time)
}

// EnterStep moves a store on to the step that phase starts: the attempts of the step before do
// not count against it (a store that flapped while planning starts erasing at the base backoff).
func EnterStep(p *privacyv1alpha1.StoreProgress, phase privacyv1alpha1.StorePhase) {
	p.Phase, p.Attempts, p.NextAttemptAt, p.Message = phase, 0, nil, ""
}

// RetryAt records one more unsuccessful attempt at the current step that is not a failure (the
// store answered, but not yet what the step waits for) and schedules the next one.
func RetryAt(p *privacyv1alpha1.StoreProgress, now time.Time, message string) {
	p.Attempts++
	p.NextAttemptAt = timeOf(NextAttempt(now, p.Attempts, true))
	p.Message = message
}

// PollAt asks a store that works asynchronously again at t, without counting an attempt.
func PollAt(p *privacyv1alpha1.StoreProgress, t time.Time, message string) {
	p.NextAttemptAt = timeOf(t)
	p.Message = message
}

func timeOf(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}
