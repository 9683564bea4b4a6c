package controllers

import (
	"k8s.io/utils/ptr"

	"context"
	"fmt"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/metrics"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

// workOnStore does a store's next step: plan, erase or verify.
func (r *DeletionRequestReconciler) workOnStore(ctx context.Context, s *deletionScope, cl connector.Client, st *privacyv1alpha1.DeletionStoreStatus) (storeStep, error) {
	switch {
	case st.Planned == nil:
		return r.planStore(ctx, s, cl, st)
	case st.Phase == privacyv1alpha1.StoreErased && st.Remaining == 0:
		return storeStep{}, verifyStore(ctx, s, cl, st)
	default:
		// Planned and not erased yet, or erased with records left that the verification found.
		return storeStep{}, eraseStore(ctx, s, cl, st)
	}
}

// planStore counts what a store would erase, mask and retain. A dry-run request ends there.
func (r *DeletionRequestReconciler) planStore(ctx context.Context, s *deletionScope, cl connector.Client, st *privacyv1alpha1.DeletionStoreStatus) (storeStep, error) {
	dr := s.request
	res, err := cl.Erase(ctx, withDryRun(s.subjectRequest(string(dr.UID))))
	metrics.StoreOperations.WithLabelValues(string(st.Type), "plan", result(err, res != nil && res.Pending)).Inc()
	if err != nil {
		return storeStep{}, err
	}
	if res.Pending {
		st.Phase = privacyv1alpha1.StorePending
		requests.PollAt(&st.StoreProgress, s.now.Add(pendingPoll), "the store is still counting")
		return storeStep{}, nil
	}
	return recordStorePlan(dr, st, res), nil
}

// recordStorePlan records a store's plan: a dry-run request is done with it, any other goes on
// to erase.
func recordStorePlan(dr *privacyv1alpha1.DeletionRequest, st *privacyv1alpha1.DeletionStoreStatus, res *connector.EraseResult) storeStep {
	st.Planned = &privacyv1alpha1.EraseCounts{Erased: res.Erased, Masked: res.Masked, Retained: res.Retained}
	st.RetainedReasons = retainedReasons(res.RetainedLocations)
	st.Shared, st.SharedLocations = res.Shared, locationRecords(res.SharedLocations)
	if dr.Spec.DryRun {
		requests.EnterStep(&st.StoreProgress, privacyv1alpha1.StoreDryRun)
		st.Message = fmt.Sprintf("would erase %d, mask %d, retain %d", res.Erased, res.Masked, res.Retained)
		if res.Shared > 0 {
			st.Message += fmt.Sprintf(", leave %d shared", res.Shared)
		}
		return storeStep{}
	}
	requests.EnterStep(&st.StoreProgress, privacyv1alpha1.StoreErasing)
	return storeStep{planned: true}
}

// eraseStore applies the mapping and verifies right away. A store whose verification found records
// left (written while it was erased, or under a spelling its plan had not seen) is erased again:
// the request is not complete, so what is there now is its to erase. That erasure has its own ID
// (an http processor may answer a repeated ID from its record of the first), and what it erases
// adds to the plan's counts. Its attempts keep counting, so that records an erasure cannot
// change (a mapping that verifies what it does not erase) are retried ever more slowly.
func eraseStore(ctx context.Context, s *deletionScope, cl connector.Client, st *privacyv1alpha1.DeletionStoreStatus) error {
	id := string(s.request.UID)
	left := st.Remaining > 0
	if left {
		id += fmt.Sprintf("/left/%d", st.Attempts)
	}
	req := s.subjectRequest(id)
	if st.Planned != nil {
		req.Planned = ptr.To(st.Planned.Erased + st.Planned.Masked)
	}
	res, err := cl.Erase(ctx, req)
	metrics.StoreOperations.WithLabelValues(string(st.Type), "erase", result(err, res != nil && res.Pending)).Inc()
	if err != nil {
		return err
	}
	if res.Pending {
		st.Phase = privacyv1alpha1.StoreErasing
		requests.PollAt(&st.StoreProgress, s.now.Add(pendingPoll), "the store accepted the erasure and is still working on it")
		return nil
	}
	if left {
		st.Erased += res.Erased
		st.Masked += res.Masked
		st.Phase = privacyv1alpha1.StoreErased
	} else {
		// A repeated erase (after a crash, or a stale read) finds nothing left: the plan holds
		// the counts of what this request erased.
		st.Erased = max(st.Planned.Erased, res.Erased)
		st.Masked = max(st.Planned.Masked, res.Masked)
		requests.EnterStep(&st.StoreProgress, privacyv1alpha1.StoreErased)
	}
	st.Retained = res.Retained
	st.RetainedReasons = retainedReasons(res.RetainedLocations)
	st.Shared, st.SharedLocations = res.Shared, locationRecords(res.SharedLocations)
	return verifyStore(ctx, s, cl, st)
}

// verifyStore checks that nothing identifying the subject is left; what is left is erased and
// looked for again, with backoff (see eraseStore).
func verifyStore(ctx context.Context, s *deletionScope, cl connector.Client, st *privacyv1alpha1.DeletionStoreStatus) error {
	res, err := cl.Verify(ctx, withDeep(s.subjectRequest(string(s.request.UID)), deep(s.request)))
	metrics.StoreOperations.WithLabelValues(string(st.Type), "verify", result(err, res != nil && res.Pending)).Inc()
	if err != nil {
		return err
	}
	if res.Pending {
		requests.PollAt(&st.StoreProgress, s.now.Add(pendingPoll), "erased; the store is still verifying")
		return nil
	}
	st.Remaining = res.Remaining
	recordVerification(st, res)
	if res.Remaining > 0 {
		st.Phase = privacyv1alpha1.StoreErased
		requests.RetryAt(&st.StoreProgress, s.now, "still holds records of the subject in "+describeLocations(res.RemainingLocations))
		return nil
	}
	requests.EnterStep(&st.StoreProgress, privacyv1alpha1.StoreVerified)
	st.VerifiedAt = ptrTime(s.now)
	return nil
}

// recordVerification records what a verification found kept on purpose, shared and unmapped.
// A store that does not report shared records (an http processor) keeps what its erasure said.
func recordVerification(st *privacyv1alpha1.DeletionStoreStatus, res *connector.VerifyResult) {
	st.Retained = res.Retained
	st.RetainedReasons = retainedReasons(res.RetainedLocations)
	if res.Shared > 0 || len(res.SharedLocations) > 0 {
		st.Shared, st.SharedLocations = res.Shared, locationRecords(res.SharedLocations)
	}
	st.Unmapped, st.UnmappedLocations = res.Unmapped, locationRecords(res.UnmappedLocations)
}

func locationRecords(locs []connector.LocationCount) []privacyv1alpha1.LocationRecords {
	if len(locs) == 0 {
		return nil
	}
	out := make([]privacyv1alpha1.LocationRecords, len(locs))
	for i, l := range locs {
		out[i] = privacyv1alpha1.LocationRecords{Location: l.Location, Records: l.Records}
	}
	return out
}

func deep(dr *privacyv1alpha1.DeletionRequest) bool {
	return dr.Spec.Verification != nil && dr.Spec.Verification.Deep
}

func retainedReasons(locs []connector.LocationCount) []privacyv1alpha1.RetainedLocation {
	if len(locs) == 0 {
		return nil
	}
	out := make([]privacyv1alpha1.RetainedLocation, len(locs))
	for i, l := range locs {
		out[i] = privacyv1alpha1.RetainedLocation{Location: l.Location, Records: l.Records, Reason: l.Reason}
	}
	return out
}

func storesWith(dr *privacyv1alpha1.DeletionRequest, phase privacyv1alpha1.StorePhase) string {
	var names []string
	for i := range dr.Status.Stores {
		if dr.Status.Stores[i].Phase == phase {
			names = append(names, storeLabel(&dr.Status.Stores[i].StoreProgress))
		}
	}
	return joinNames(names)
}

func storeLabel(p *privacyv1alpha1.StoreProgress) string {
	return fmt.Sprintf("%s %s", p.Kind, p.Name)
}
