package controllers

import (
	"context"
	"fmt"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/metrics"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/secretref"
)

// reverificationOutcome is what one re-verification of every store found, aggregated after the
// fan-out from the per-store results.
type reverificationOutcome struct {
	// reappeared and reErased name the stores where records came back, and where they were
	// erased again.
	reappeared, reErased []string
	// failures counts the stores that could not be asked.
	failures int
}

// storeReverification is one store's part of a re-verification.
type storeReverification struct {
	reappeared, reErased bool
}

// reverifyWhenDue checks every store again on the request's schedule, reports data that came back
// and, when asked, erases it again. After the period it deletes the identifiers Secret.
func (r *DeletionRequestReconciler) reverifyWhenDue(ctx context.Context, s *deletionScope) (bool, error) {
	dr := s.request
	v := dr.Status.Verification
	if v == nil || v.NextVerificationAt == nil {
		return false, nil
	}
	if s.now.Before(v.NextVerificationAt.Time) {
		s.effect.at(v.NextVerificationAt.Time)
		return false, nil
	}
	if v.VerifyUntil != nil && !s.now.Before(v.VerifyUntil.Time) {
		return false, r.endVerification(ctx, s)
	}
	if ok, err := s.readIdentifiers(ctx); !ok {
		return false, err
	}
	fan := s.fanOut(func(ctx context.Context, i int) (connector.Client, func(), error) {
		return s.storeClient(ctx, i, dr.Status.Stores[i].Kind, dr.Status.Stores[i].Name)
	})
	// A store that cannot be asked keeps its phase: what it held at the last look is still true.
	fan.KeepPhaseOnFailure = true
	results := requests.Run(ctx, fan, deletionProgress(dr), func(int) bool { return true },
		func(ctx context.Context, i int, cl connector.Client) (storeReverification, error) {
			return reverifyStore(ctx, s, cl, &dr.Status.Stores[i])
		})

	outcome := &reverificationOutcome{}
	for i, res := range results {
		label := storeLabel(&dr.Status.Stores[i].StoreProgress)
		if res.Failure != nil {
			outcome.failures++
		}
		if res.Value.reappeared {
			outcome.reappeared = append(outcome.reappeared, label)
		}
		if res.Value.reErased {
			outcome.reErased = append(outcome.reErased, label)
		}
	}
	s.reverification = outcome

	interval, _ := reverifyTiming(dr)
	v.Verifications++
	v.LastVerifiedAt = ptrTime(s.now)
	next := s.now.Add(interval)
	if outcome.failures > 0 {
		next = minTime(next, s.now.Add(requests.MaxBackoff))
	}
	if v.VerifyUntil != nil {
		next = minTime(next, v.VerifyUntil.Time)
	}
	v.NextVerificationAt = ptrTime(next)
	s.effect.at(next)
	if len(outcome.reappeared) > 0 {
		v.Reappearances++
		for _, name := range outcome.reappeared {
			s.effect.warn(privacyv1alpha1.ReasonDataReappeared, "Verify", "records of the subject reappeared in "+name)
		}
		for _, name := range outcome.reErased {
			s.effect.normal(privacyv1alpha1.ReasonReErased, "Erase", "reappeared records were erased again in "+name)
		}
	}
	if storesWith(dr, privacyv1alpha1.StoreReappeared) != "" {
		dr.Status.Phase = privacyv1alpha1.PhaseReappeared
	} else if len(outcome.reErased) > 0 || outcome.failures == 0 {
		dr.Status.Phase = privacyv1alpha1.PhaseCompleted
	}
	return true, nil
}

// reverifyStore verifies one store again and, when records came back and the request asks for it,
// erases them again.
func reverifyStore(ctx context.Context, s *deletionScope, cl connector.Client, st *privacyv1alpha1.DeletionStoreStatus) (storeReverification, error) {
	dr, now := s.request, s.now
	res, err := cl.Verify(ctx, withDeep(s.subjectRequest(string(dr.UID)), deep(dr)))
	metrics.StoreOperations.WithLabelValues(string(st.Type), "verify", result(err, res != nil && res.Pending)).Inc()
	if err != nil || res.Pending {
		return storeReverification{}, err
	}
	recordVerification(st, res)
	if res.Remaining == 0 {
		requests.EnterStep(&st.StoreProgress, privacyv1alpha1.StoreVerified)
		st.Remaining = 0
		st.VerifiedAt = ptrTime(now)
		return storeReverification{}, nil
	}
	metrics.Reappearances.WithLabelValues(string(st.Type)).Inc()
	st.Phase, st.Remaining = privacyv1alpha1.StoreReappeared, res.Remaining
	st.Message = fmt.Sprintf("records of the subject reappeared in %s", describeLocations(res.RemainingLocations))
	if dr.Spec.Verification == nil || !dr.Spec.Verification.ReErase {
		return storeReverification{reappeared: true}, nil
	}
	er, err := cl.Erase(ctx, s.subjectRequest(string(dr.UID)+"/reerase/"+now.UTC().Format(time.RFC3339)))
	metrics.StoreOperations.WithLabelValues(string(st.Type), "erase", result(err, er != nil && er.Pending)).Inc()
	if err != nil || er.Pending {
		return storeReverification{reappeared: true}, err
	}
	again, err := cl.Verify(ctx, withDeep(s.subjectRequest(string(dr.UID)), deep(dr)))
	if err != nil || again.Pending {
		return storeReverification{reappeared: true}, err
	}
	st.ReErasures++
	st.Message = fmt.Sprintf("%d records reappeared on %s and were erased again", er.Erased+er.Masked, now.UTC().Format(time.RFC3339))
	if again.Remaining > 0 {
		st.Remaining = again.Remaining
		return storeReverification{reappeared: true}, nil
	}
	st.Phase, st.Remaining = privacyv1alpha1.StoreVerified, 0
	st.VerifiedAt = ptrTime(now)
	return storeReverification{reappeared: true, reErased: true}, nil
}

// endVerification closes the re-verification window: the operator stops keeping the very data it
// was asked to forget.
func (r *DeletionRequestReconciler) endVerification(ctx context.Context, s *deletionScope) error {
	dr := s.request
	v := dr.Status.Verification
	v.NextVerificationAt = nil
	if dr.Spec.Verification != nil && dr.Spec.Verification.KeepIdentifiersSecret {
		s.effect.normal(privacyv1alpha1.ReasonVerificationEnded, "Verify", "re-verification period ended; identifiers Secret kept as spec.verification.keepIdentifiersSecret asks")
		return nil
	}
	if err := r.feedSuppressionLists(ctx, s); err != nil {
		return err
	}
	// Only a Secret marked as identifiers (or the operator's own) is deleted: a requester must not
	// be able to destroy another Secret by naming it.
	deleted, err := secretref.DeleteIdentifiers(ctx, r.Client, r.APIReader, dr, dr.Namespace, dr.Spec.Subject.IdentifiersSecretRef.Name)
	if err != nil {
		return fmt.Errorf("deleting identifiers Secret: %w", err)
	}
	if err := s.deleteDerived(ctx); err != nil {
		return err
	}
	v.IdentifiersSecretDeleted = true
	if !deleted {
		s.effect.normal(privacyv1alpha1.ReasonVerificationEnded, "Verify", "re-verification period ended; the identifiers Secret was already gone or is no longer labelled as identifiers, so it was not deleted")
		return nil
	}
	s.effect.normal(privacyv1alpha1.ReasonIdentifiersSecretDeleted, "Verify", "re-verification period ended; identifiers Secret deleted")
	return nil
}
