package controllers

import (
	"context"
	"fmt"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/metrics"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

// acceptRequest resolves the subject and the stores and lists each store in the status. A refused
// request ends the reconcile; the status function shows why.
func (r *DeletionRequestReconciler) acceptRequest(ctx context.Context, s *deletionScope) (bool, error) {
	wasRefused := s.wasRefused()
	acc, err := s.accept(ctx)
	if acc == nil || err != nil {
		return false, err
	}
	s.planWhileDeriving = true
	if proceed, err := s.deriveLinked(ctx, labelDeletionRequest); !proceed || err != nil {
		return false, err
	}
	dr := s.request
	dr.Status.StoreCount = int32(len(acc.Stores))
	dr.Status.Stores = make([]privacyv1alpha1.DeletionStoreStatus, len(acc.Stores))
	for i, st := range acc.Stores {
		dr.Status.Stores[i] = privacyv1alpha1.DeletionStoreStatus{StoreProgress: privacyv1alpha1.StoreProgress{
			Name: st.Ref.Name, Kind: st.Ref.Kind, Type: st.Spec.Type, Phase: privacyv1alpha1.StorePending,
			Derived: s.derivedStatus(i)}}
		// A store that counted its erasure while deriving, with the values it will erase with,
		// is planned already.
		if res, ok := s.derivedPlans[i]; ok {
			metrics.StoreOperations.WithLabelValues(string(st.Spec.Type), "plan", result(nil, false)).Inc()
			if recordStorePlan(dr, &dr.Status.Stores[i], res).planned {
				s.planned++
			}
		}
	}
	dr.Status.Phase = privacyv1alpha1.PhaseErasing
	// Normal events mark a recovery, not the usual path: a request accepted at once writes none
	// (its conditions and receipt say it all), since every event is one more API write per request.
	if wasRefused {
		s.effect.normal(privacyv1alpha1.ReasonAccepted, "Accept",
			fmt.Sprintf("accepted for %d stores; deadline %s", len(acc.Stores), acc.Deadline.Format(time.RFC3339)))
	} else {
		s.acceptedAtOnce = true
	}
	return true, nil
}

// planAcceptedStores plans what each store will erase, so that the counts reported after a crash
// mid-erasure are those of the plan, not of a repeated erase that finds nothing.
func (r *DeletionRequestReconciler) planAcceptedStores(ctx context.Context, s *deletionScope) (bool, error) {
	stores := s.request.Status.Stores
	r.runOnStores(ctx, s, func(i int) bool { return stores[i].Planned == nil }, r.planStore)
	return true, nil
}

// readIdentifiers reads the subject again; a Secret that cannot be read ends the reconcile.
func (r *DeletionRequestReconciler) readIdentifiers(ctx context.Context, s *deletionScope) (bool, error) {
	return s.readIdentifiers(ctx)
}

// workOnDueStores plans what is unplanned, erases what is planned and verifies what is erased, in
// every store that is not done and not backing off.
func (r *DeletionRequestReconciler) workOnDueStores(ctx context.Context, s *deletionScope) (bool, error) {
	stores := s.request.Status.Stores
	due := func(i int) bool {
		st := &stores[i]
		done := st.Phase == privacyv1alpha1.StoreVerified || st.Phase == privacyv1alpha1.StoreDryRun
		return !done && !requests.IsBackingOff(&st.StoreProgress, s.now)
	}
	r.runOnStores(ctx, s, due, r.workOnStore)
	return true, nil
}

// eraseNewlyPlanned erases, in this reconcile, the stores it planned, with the identifiers and
// stores just read, once the plan is written: after a crash mid-erasure the counts come from the
// plan, not from a repeated erase that finds nothing. The reconcile that accepts writes the plan
// into the receipt ConfigMap, which the receipt needs anyway (a ConfigMap costs the API server a
// fraction of a status patch); stores planned later write it into the status.
func (r *DeletionRequestReconciler) eraseNewlyPlanned(ctx context.Context, s *deletionScope) (bool, error) {
	if s.planned == 0 {
		return true, nil
	}
	s.planned = 0
	if s.acceptedStores == nil {
		if proceed, err := s.checkpoint(ctx); !proceed {
			return false, err
		}
	} else if err := r.recordPlan(ctx, s); err != nil {
		// The status written at the end holds the plan; the next reconcile erases.
		s.log.Error(err, "Recording the plan in the receipt ConfigMap")
		s.effect.after(time.Second)
		return true, nil
	}
	return r.workOnDueStores(ctx, s)
}

// settleRequestPhase sets the request's phase from its stores, and completes it when every store is
// verified.
func (r *DeletionRequestReconciler) settleRequestPhase(ctx context.Context, s *deletionScope) (bool, error) {
	dr := s.request
	c := countStores(dr)
	if dr.Spec.DryRun {
		if c.dryRun == c.total {
			dr.Status.Phase = privacyv1alpha1.PhaseCompleted
			dr.Status.CompletionTime = ptrTime(s.now)
			s.effect.normal(privacyv1alpha1.ReasonDryRun, "Plan", fmt.Sprintf("dry run planned over %d stores", c.total))
		}
		return true, nil
	}
	switch {
	case c.verified == c.total:
		r.complete(ctx, s)
	case c.erased == c.total:
		dr.Status.Phase = privacyv1alpha1.PhaseVerifying
	default:
		dr.Status.Phase = privacyv1alpha1.PhaseErasing
	}
	return true, nil
}

// complete issues the receipt and starts the re-verification window. A receipt that cannot be
// issued keeps the request Verifying and is tried again: a completed request always has its receipt.
func (r *DeletionRequestReconciler) complete(ctx context.Context, s *deletionScope) {
	dr := s.request
	if dr.Status.Receipt == nil {
		ref, err := r.issueReceipt(ctx, s)
		if err != nil {
			s.log.Error(err, "Issuing the receipt")
			dr.Status.Phase = privacyv1alpha1.PhaseVerifying
			s.facts.blocked = &blockingFailure{privacyv1alpha1.ReasonReceiptNotIssued,
				"every store is verified but the receipt could not be issued; retrying: " + err.Error()}
			s.effect.after(pendingPoll)
			return
		}
		dr.Status.Receipt = ref
	}
	dr.Status.Phase = privacyv1alpha1.PhaseCompleted
	dr.Status.CompletionTime = ptrTime(s.now)
	interval, period := reverifyTiming(dr)
	until := s.now.Add(period)
	v := &privacyv1alpha1.VerificationStatus{LastVerifiedAt: ptrTime(s.now), Verifications: 1, VerifyUntil: ptrTime(until)}
	v.NextVerificationAt = ptrTime(minTime(s.now.Add(interval), until))
	dr.Status.Verification = v
	s.effect.at(v.NextVerificationAt.Time)
	if dr.Status.ReceivedAt != nil {
		metrics.TimeToVerified.Observe(s.now.Sub(dr.Status.ReceivedAt.Time).Seconds())
	}
	if !s.acceptedAtOnce {
		s.effect.normal(privacyv1alpha1.ReasonVerified, "Verify", fmt.Sprintf("erasure verified in all %d stores; receipt %s issued",
			len(dr.Status.Stores), dr.Status.Receipt.ConfigMapName))
	}
}

// storeOp is one store's work in a fan-out; it changes only that store's status.
type storeOp func(ctx context.Context, s *deletionScope, cl connector.Client, st *privacyv1alpha1.DeletionStoreStatus) (storeStep, error)

// storeStep is what a store's work did beyond its status.
type storeStep struct {
	// planned: the store was planned and waits to be erased.
	planned bool
}

// runOnStores runs op on the due stores at once and records their failures.
func (r *DeletionRequestReconciler) runOnStores(ctx context.Context, s *deletionScope, due func(int) bool, op storeOp) {
	dr := s.request
	results := requests.Run(ctx, s.fanOut(func(ctx context.Context, i int) (connector.Client, func(), error) {
		return s.storeClient(ctx, i, dr.Status.Stores[i].Kind, dr.Status.Stores[i].Name)
	}), deletionProgress(dr), due, func(ctx context.Context, i int, cl connector.Client) (storeStep, error) {
		return op(ctx, s, cl, &dr.Status.Stores[i])
	})
	for i, res := range results {
		if res.Value.planned {
			s.planned++
		}
		if res.NewlyFailing {
			s.effect.warn(res.Failure.Reason, "Erase", fmt.Sprintf("%s: %s", storeLabel(&dr.Status.Stores[i].StoreProgress), res.Failure.Message))
		}
	}
}

// storeCounts counts a deletion's stores by phase.
type storeCounts struct {
	total, erased, verified, dryRun, failed, retrying int
}

func countStores(dr *privacyv1alpha1.DeletionRequest) storeCounts {
	c := storeCounts{total: len(dr.Status.Stores)}
	for i := range dr.Status.Stores {
		switch dr.Status.Stores[i].Phase {
		case privacyv1alpha1.StoreVerified:
			c.verified++
			c.erased++
		case privacyv1alpha1.StoreErased:
			c.erased++
		case privacyv1alpha1.StoreDryRun:
			c.dryRun++
		case privacyv1alpha1.StoreFailed:
			c.failed++
		case privacyv1alpha1.StoreRetrying:
			c.retrying++
		}
	}
	return c
}

func reverifyTiming(dr *privacyv1alpha1.DeletionRequest) (interval, period time.Duration) {
	interval, period = defaultReverifyInterval, defaultReverifyPeriod
	if v := dr.Spec.Verification; v != nil {
		if v.ReverifyInterval != nil && v.ReverifyInterval.Duration > 0 {
			interval = v.ReverifyInterval.Duration
		}
		if v.ReverifyPeriod != nil {
			period = v.ReverifyPeriod.Duration
		}
	}
	return interval, period
}
