package controllers

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// deriveAccessStatus sets every condition of an AccessRequest from its status and from what this
// reconcile recorded, and gathers the Warning events of the transitions. It is the only place that
// sets the request's conditions.
func deriveAccessStatus(ar *privacyv1alpha1.AccessRequest, facts *requestFacts, e *effects) {
	status, gen := &ar.Status.RequestStatusCommon, ar.Generation
	deriveAccepted(status, gen, facts, len(ar.Status.Stores), e)
	if !unaccepted(ar.Status.Phase) {
		deriveCollected(ar, facts, e)
	}
	deriveExpired(ar)
	deriveDeadline(status, gen, ar.IsFinished(), e)
	deriveAccessReady(ar, facts, e)
}

func deriveCollected(ar *privacyv1alpha1.AccessRequest, facts *requestFacts, e *effects) {
	status, gen := &ar.Status.RequestStatusCommon, ar.Generation
	if ar.Status.Phase == privacyv1alpha1.PhaseCollecting && deriveSubjectProblem(status, gen, facts, privacyv1alpha1.ConditionCollected, e) {
		return
	}
	var collected, failed, retrying int
	var records int64
	for _, st := range ar.Status.Stores {
		switch st.Phase {
		case privacyv1alpha1.StoreCollected:
			collected++
			records += st.Records
		case privacyv1alpha1.StoreFailed:
			failed++
		case privacyv1alpha1.StoreRetrying:
			retrying++
		}
	}
	n := len(ar.Status.Stores)
	set := func(s metav1.ConditionStatus, reason, msg string) {
		setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionCollected, s, reason, msg)
	}
	switch {
	case collected == n:
		set(metav1.ConditionTrue, privacyv1alpha1.ReasonCollected, fmt.Sprintf("%d records from %d stores", records, n))
	case failed > 0:
		set(metav1.ConditionFalse, privacyv1alpha1.ReasonStoreFailed, fmt.Sprintf("%d stores failed and are retried slowly until fixed; see status.stores", failed))
	case retrying > 0:
		set(metav1.ConditionFalse, privacyv1alpha1.ReasonStoreUnavailable, fmt.Sprintf("%d stores are unavailable and retried with backoff; see status.stores", retrying))
	default:
		set(metav1.ConditionFalse, privacyv1alpha1.ReasonCollecting, fmt.Sprintf("%d of %d stores left", n-collected, n))
	}
}

func deriveExpired(ar *privacyv1alpha1.AccessRequest) {
	status, gen := &ar.Status.RequestStatusCommon, ar.Generation
	if ar.Status.Export == nil || ar.Status.Export.ExpiresAt == nil {
		return
	}
	switch ar.Status.Phase {
	case privacyv1alpha1.PhaseCompleted:
		if d := ar.Status.Export.Delivery; d != nil && d.Attempts > 0 {
			setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionExpired, metav1.ConditionFalse, reasonExpiryRetrying,
				fmt.Sprintf("the export's TTL passed but deleting its files from bucket %s failed %d times (%s); next attempt at %s",
					d.Bucket, d.Attempts, d.Message, d.NextAttemptAt.UTC().Format(time.RFC3339)))
			return
		}
		setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionExpired, metav1.ConditionFalse, privacyv1alpha1.ReasonNotExpired,
			"the export expires at "+ar.Status.Export.ExpiresAt.UTC().Format(time.RFC3339))
	case privacyv1alpha1.PhaseExpired:
		setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionExpired, metav1.ConditionTrue, privacyv1alpha1.ReasonExpired, expiredMessage(ar))
	}
}

// deriveAccessReady summarises: a failure that blocks the request first, then the delivered or
// expired export, else the first condition the request waits for.
func deriveAccessReady(ar *privacyv1alpha1.AccessRequest, facts *requestFacts, e *effects) {
	status, gen := &ar.Status.RequestStatusCommon, ar.Generation
	if deriveBlockedReady(status, gen, facts, e) {
		return
	}
	switch ar.Status.Phase {
	case privacyv1alpha1.PhaseCompleted:
		msg := fmt.Sprintf("export delivered in Secret %s", ar.Status.Export.SecretName)
		if d := ar.Status.Export.Delivery; d != nil {
			msg = fmt.Sprintf("export delivered to bucket %s; digests and download links in Secret %s", d.Bucket, ar.Status.Export.SecretName)
		}
		setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, msg)
	case privacyv1alpha1.PhaseExpired:
		setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonExpired, "the export expired and was deleted")
	case privacyv1alpha1.PhaseFailed:
		// The reconcile that failed the request set Ready with its reason; nothing changes it since.
	default:
		readyFromFirstNotTrue(status, gen, privacyv1alpha1.ConditionAccepted, privacyv1alpha1.ConditionCollected)
	}
}
