package controllers

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// deriveDeletionStatus sets every condition of a DeletionRequest from its status and from what
// this reconcile recorded (facts, and the re-verification's outcome when one ran), and gathers
// the Warning events of the transitions. It is the only place that sets the request's conditions.
func deriveDeletionStatus(dr *privacyv1alpha1.DeletionRequest, facts *requestFacts, reverification *reverificationOutcome, e *effects) {
	status, gen := &dr.Status.RequestStatusCommon, dr.Generation
	deriveAccepted(status, gen, facts, len(dr.Status.Stores), e)
	if !unaccepted(dr.Status.Phase) {
		deriveErased(dr, facts, e)
		deriveVerified(dr, facts, reverification, e)
	}
	deriveDeadline(status, gen, dr.IsFinished(), e)
	deriveDeletionReady(dr, facts, e)
	for _, finding := range facts.unmapped {
		e.warn(privacyv1alpha1.ReasonUnmappedData, "Verify", finding)
	}
}

// newUnmappedFindings describes the stores whose unmapped findings are new or changed since the
// status was last written, so that each finding raises one Warning event, not one per reconcile.
func newUnmappedFindings(before, dr *privacyv1alpha1.DeletionRequest) []string {
	var out []string
	for i := range dr.Status.Stores {
		st := &dr.Status.Stores[i]
		if st.Unmapped == 0 {
			continue
		}
		if i < len(before.Status.Stores) && equality.Semantic.DeepEqual(before.Status.Stores[i].UnmappedLocations, st.UnmappedLocations) {
			continue
		}
		parts := make([]string, len(st.UnmappedLocations))
		for j, l := range st.UnmappedLocations {
			parts[j] = fmt.Sprintf("%s (%d)", l.Location, l.Records)
		}
		where := strings.Join(parts, ", ")
		if where == "" {
			where = "the store"
		}
		out = append(out, fmt.Sprintf("%s: a deep verification found %d copies of the subject's identifiers outside the mapping, in %s; map or erase them",
			storeLabel(&st.StoreProgress), st.Unmapped, where))
	}
	return out
}

// waitingCondition is the condition a request waits for in its phase: Erased while erasing,
// Verified once completed.
func waitingCondition(dr *privacyv1alpha1.DeletionRequest) string {
	if dr.Status.Phase == privacyv1alpha1.PhaseCompleted || dr.Status.Phase == privacyv1alpha1.PhaseReappeared {
		return privacyv1alpha1.ConditionVerified
	}
	return privacyv1alpha1.ConditionErased
}

func deriveErased(dr *privacyv1alpha1.DeletionRequest, facts *requestFacts, e *effects) {
	status, gen := &dr.Status.RequestStatusCommon, dr.Generation
	if waitingCondition(dr) == privacyv1alpha1.ConditionErased && deriveSubjectProblem(status, gen, facts, privacyv1alpha1.ConditionErased, e) {
		return
	}
	c := countStores(dr)
	set := func(s metav1.ConditionStatus, reason, msg string) {
		setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionErased, s, reason, msg)
	}
	switch {
	case dr.Spec.DryRun && c.dryRun == c.total:
		set(metav1.ConditionFalse, privacyv1alpha1.ReasonDryRun, "dry run: nothing was changed; status.stores[].planned shows what would be")
	case dr.Spec.DryRun:
		setErasingCondition(set, c, c.total-c.dryRun)
	case c.erased == c.total, dr.IsFinished():
		// Completed stays erased while re-verification finds records that came back.
		set(metav1.ConditionTrue, privacyv1alpha1.ReasonErased, fmt.Sprintf("all %d stores applied their mapping", c.total))
	default:
		setErasingCondition(set, c, c.total-c.erased)
	}
}

func setErasingCondition(set func(metav1.ConditionStatus, string, string), c storeCounts, left int) {
	switch {
	case c.failed > 0:
		set(metav1.ConditionFalse, privacyv1alpha1.ReasonStoreFailed, fmt.Sprintf("%d stores failed and are retried slowly until fixed; see status.stores", c.failed))
	case c.retrying > 0:
		set(metav1.ConditionFalse, privacyv1alpha1.ReasonStoreUnavailable, fmt.Sprintf("%d stores are unavailable and retried with backoff; see status.stores", c.retrying))
	default:
		set(metav1.ConditionFalse, privacyv1alpha1.ReasonErasing, fmt.Sprintf("%d stores left", left))
	}
}

func deriveVerified(dr *privacyv1alpha1.DeletionRequest, facts *requestFacts, reverification *reverificationOutcome, e *effects) {
	status, gen := &dr.Status.RequestStatusCommon, dr.Generation
	if dr.Spec.DryRun {
		return
	}
	c := countStores(dr)
	set := func(s metav1.ConditionStatus, reason, msg string) bool {
		return setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionVerified, s, reason, msg)
	}
	cleanMessage := fmt.Sprintf("no store holds anything that identifies the subject (%d stores)", c.total)
	switch dr.Status.Phase {
	case privacyv1alpha1.PhaseCompleted, privacyv1alpha1.PhaseReappeared:
		if reappeared := storesWith(dr, privacyv1alpha1.StoreReappeared); reappeared != "" {
			set(metav1.ConditionFalse, privacyv1alpha1.ReasonDataReappeared, "records of the subject reappeared in "+reappeared)
			return
		}
		if deriveSubjectProblem(status, gen, facts, privacyv1alpha1.ConditionVerified, e) {
			return
		}
		switch {
		case reverification != nil && len(reverification.reErased) > 0:
			set(metav1.ConditionTrue, privacyv1alpha1.ReasonReErased, "reappeared records were erased again in "+joinNames(reverification.reErased))
		case reverification != nil && reverification.failures == 0:
			set(metav1.ConditionTrue, privacyv1alpha1.ReasonVerified, fmt.Sprintf("no store holds anything that identifies the subject (%d stores, re-verification %d)",
				c.total, dr.Status.Verification.Verifications))
		case reverification == nil && !meta.IsStatusConditionTrue(status.Conditions, privacyv1alpha1.ConditionVerified):
			set(metav1.ConditionTrue, privacyv1alpha1.ReasonVerified, cleanMessage)
		}
		// Stores that could not be asked again leave Verified as the last look found it.
	default:
		switch {
		case c.verified == c.total:
			set(metav1.ConditionTrue, privacyv1alpha1.ReasonVerified, cleanMessage)
		case c.erased == c.total:
			remaining := storesWith(dr, privacyv1alpha1.StoreErased)
			if set(metav1.ConditionFalse, privacyv1alpha1.ReasonDataRemains,
				fmt.Sprintf("%d of %d stores still hold records of the subject: %s", c.total-c.verified, c.total, remaining)) {
				e.warn(privacyv1alpha1.ReasonDataRemains, "Verify", "records of the subject remain in "+remaining)
			}
		}
	}
}

// deriveDeletionReady summarises: a failure that blocks the request first, then the outcome of a
// completed request, else the first condition the request waits for.
func deriveDeletionReady(dr *privacyv1alpha1.DeletionRequest, facts *requestFacts, e *effects) {
	status, gen := &dr.Status.RequestStatusCommon, dr.Generation
	if deriveBlockedReady(status, gen, facts, e) {
		return
	}
	switch dr.Status.Phase {
	case privacyv1alpha1.PhaseCompleted:
		switch {
		case dr.Spec.DryRun:
			setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonDryRun, "dry run complete; nothing was changed")
		case meta.IsStatusConditionTrue(status.Conditions, privacyv1alpha1.ConditionVerified):
			setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, "erased and verified; receipt issued")
		default:
			readyFromFirstNotTrue(status, gen, privacyv1alpha1.ConditionVerified)
		}
	case privacyv1alpha1.PhaseFailed:
		// The reconcile that failed the request set Ready with its reason; nothing changes it since.
	default:
		readyFromFirstNotTrue(status, gen, privacyv1alpha1.ConditionAccepted, privacyv1alpha1.ConditionVerified, privacyv1alpha1.ConditionErased)
	}
}
