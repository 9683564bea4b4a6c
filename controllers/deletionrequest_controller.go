package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/metrics"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/secretref"
	"github.com/dsr-operator/dsr-operator/internal/stores"
)

// Defaults of spec.verification, for requests created before the CRD defaulted them.
const (
	defaultReverifyInterval = time.Hour
	defaultReverifyPeriod   = 720 * time.Hour
	// rejectedRetry is how soon a request that could not be accepted is tried again: the portal
	// may create the identifiers Secret or a store right after the request.
	rejectedRetry = 30 * time.Second
	// pendingPoll is how soon a store that answered "pending" (an asynchronous processor) is asked again.
	pendingPoll = 15 * time.Second
	// waitingForSecretIndex indexes requests not yet accepted by the name of their identifiers
	// Secret. Accepted requests are left out: they are most of the cache and no Secret wakes them.
	waitingForSecretIndex = ".spec.subject.identifiersSecretRef.name/unaccepted"
)

// DeletionRequestReconciler erases a subject's data from every store a request may use, verifies
// the erasure, keeps re-verifying for a window and signs a receipt.
type DeletionRequestReconciler struct {
	Shared
	Signer *receipt.Signer
}

// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=deletionrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=deletionrequests/status,verbs=get;patch
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=datastores;clusterdatastores,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one request one step along its life. Every step is idempotent: a crash at any
// point, or a stale read, repeats work that finds nothing left to do.
func (r *DeletionRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var dr privacyv1alpha1.DeletionRequest
	if err := r.Get(ctx, req.NamespacedName, &dr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !dr.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := dr.DeepCopy()
	step := &step{now: r.now()}

	var (
		err      error
		ids      connector.Identifiers
		resolved []stores.Store
	)
	switch dr.Status.Phase {
	case "", privacyv1alpha1.PhasePending:
		var acc *requests.Acceptance
		if acc, err = r.accept(ctx, &dr, step); acc != nil {
			ids, resolved = acc.Identifiers, acc.Stores
		}
	case privacyv1alpha1.PhaseErasing, privacyv1alpha1.PhaseVerifying:
		ids, err = r.erase(ctx, &dr, step)
	case privacyv1alpha1.PhaseCompleted, privacyv1alpha1.PhaseReappeared:
		if !dr.Spec.DryRun {
			err = r.reverify(ctx, &dr, step)
		}
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if step.planned > 0 {
		// Stores planned in this reconcile are erased in it too, with the identifiers and stores
		// just read, once the plan is written: after a crash mid-erasure the counts come from the
		// plan, not from a repeated erase that finds nothing. The reconcile that accepts writes it
		// into the receipt ConfigMap, which the receipt needs anyway (a ConfigMap costs the API
		// server a fraction of a status patch); stores planned later, into the status.
		step.planned = 0
		if resolved == nil {
			ok, res, err := r.checkpoint(ctx, &dr, before, step)
			if !ok {
				return res, err
			}
			before = dr.DeepCopy()
			r.eraseWith(ctx, &dr, ids, resolved, step)
		} else if err := r.recordPlan(ctx, &dr, step); err != nil {
			// The status written below holds the plan; the next reconcile erases.
			logf.FromContext(ctx).Error(err, "Recording the plan in the receipt ConfigMap")
			step.after(time.Second)
		} else {
			r.eraseWith(ctx, &dr, ids, resolved, step)
		}
	}
	r.summarize(&dr, step)
	return r.finish(ctx, &dr, before, !equality.Semantic.DeepEqual(before.Status, dr.Status), step)
}

func (r *DeletionRequestReconciler) summarize(dr *privacyv1alpha1.DeletionRequest, st *step) {
	r.checkDeadline(dr, st)
	summarizeDeletion(dr)
	dr.Status.ObservedGeneration = dr.Generation
}

// checkpoint writes the status mid-reconcile and emits the events gathered so far. When it
// returns false, the reconcile ends with the result and error given.
func (r *DeletionRequestReconciler) checkpoint(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, before *privacyv1alpha1.DeletionRequest, st *step) (bool, ctrl.Result, error) {
	r.summarize(dr, st)
	if err := r.patchStatus(ctx, dr, before); err != nil {
		if apierrors.IsConflict(err) {
			return false, ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return false, ctrl.Result{}, err
	}
	st.emit(r.Recorder, dr)
	st.events = nil
	return true, ctrl.Result{}, nil
}

// accept resolves the subject and the stores and plans what each store will erase, so that the
// counts reported after a crash mid-erasure are those of the plan, not of a repeated erase that
// finds nothing. It returns nil when the request was refused.
func (r *DeletionRequestReconciler) accept(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, st *step) (*requests.Acceptance, error) {
	acc, err := r.Shared.accept(ctx, dr, &dr.Spec.RequestSpecCommon, &dr.Status.RequestStatusCommon, st)
	if acc == nil || err != nil {
		return nil, err
	}
	dr.Status.StoreCount = int32(len(acc.Stores))
	dr.Status.Stores = make([]privacyv1alpha1.DeletionStoreStatus, len(acc.Stores))
	for i, s := range acc.Stores {
		dr.Status.Stores[i] = privacyv1alpha1.DeletionStoreStatus{
			Name: s.Ref.Name, Kind: s.Ref.Kind, Type: s.Spec.Type, Phase: privacyv1alpha1.StorePending,
		}
	}
	dr.Status.Phase = privacyv1alpha1.PhaseErasing
	// Normal events mark a recovery, not the usual path: a request accepted at once writes none
	// (its conditions and receipt say it all), since every event is one more API write per request.
	wasRefused := findCondition(dr.Status.Conditions, privacyv1alpha1.ConditionAccepted) != nil
	setCondition(&dr.Status.Conditions, dr.Generation, privacyv1alpha1.ConditionAccepted, metav1.ConditionTrue,
		privacyv1alpha1.ReasonAccepted, fmt.Sprintf("subject resolved; %d stores", len(acc.Stores)))
	if wasRefused {
		st.normal(privacyv1alpha1.ReasonAccepted, "Accept", fmt.Sprintf("accepted for %d stores; deadline %s", len(acc.Stores), acc.Deadline.Format(time.RFC3339)))
	} else {
		st.acceptedAtOnce = true
	}

	r.fanOut(ctx, dr, acc.Identifiers, acc.Stores, st, func(ctx context.Context, cl connector.Client, s *privacyv1alpha1.DeletionStoreStatus) error {
		return r.plan(ctx, cl, dr, acc.Identifiers, s, st)
	})
	r.advance(ctx, dr, st)
	return acc, nil
}

// erase works on every store that is due: plans what is unplanned, erases what is planned and
// verifies what is erased.
// It returns the identifiers it read (nil when they could not be read).
func (r *DeletionRequestReconciler) erase(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, st *step) (connector.Identifiers, error) {
	ids, ok, err := r.identifiers(ctx, dr, st)
	if err != nil || !ok {
		return nil, err
	}
	r.eraseWith(ctx, dr, ids, nil, st)
	return ids, nil
}

// eraseWith is erase with the subject already read; resolved, when set, are the request's stores
// in the order of its status.
func (r *DeletionRequestReconciler) eraseWith(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, ids connector.Identifiers, resolved []stores.Store, st *step) {
	r.fanOut(ctx, dr, ids, resolved, st, func(ctx context.Context, cl connector.Client, s *privacyv1alpha1.DeletionStoreStatus) error {
		if s.Planned == nil {
			return r.plan(ctx, cl, dr, ids, s, st)
		}
		if s.Phase == privacyv1alpha1.StoreErased {
			return r.verifyStore(ctx, cl, dr, ids, s, st.now)
		}
		return r.eraseStore(ctx, cl, dr, ids, s, st.now)
	})
	r.advance(ctx, dr, st)
}

// identifiers reads the subject again; a missing Secret is reported on the condition the current
// phase is waiting for.
func (r *DeletionRequestReconciler) identifiers(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, st *step) (connector.Identifiers, bool, error) {
	cond := privacyv1alpha1.ConditionErased
	if dr.Status.Phase == privacyv1alpha1.PhaseCompleted || dr.Status.Phase == privacyv1alpha1.PhaseReappeared {
		cond = privacyv1alpha1.ConditionVerified
	}
	return r.readSubject(ctx, dr, &dr.Spec.RequestSpecCommon, &dr.Status.RequestStatusCommon, cond, st)
}

// plan counts what a store would erase, mask and retain. A dry-run request ends there.
func (r *DeletionRequestReconciler) plan(ctx context.Context, cl connector.Client, dr *privacyv1alpha1.DeletionRequest, ids connector.Identifiers, s *privacyv1alpha1.DeletionStoreStatus, st *step) error {
	now := st.now
	res, err := cl.Erase(ctx, connector.Request{ID: string(dr.UID), Identifiers: ids, DryRun: true})
	metrics.StoreOperations.WithLabelValues(string(s.Type), "plan", result(err, res != nil && res.Pending)).Inc()
	if err != nil {
		return err
	}
	if res.Pending {
		s.Phase = privacyv1alpha1.StorePending
		s.Message = "the store is still counting"
		s.NextAttemptAt = ptrTime(now.Add(pendingPoll))
		return nil
	}
	s.Planned = &privacyv1alpha1.EraseCounts{Erased: res.Erased, Masked: res.Masked, Retained: res.Retained}
	s.RetainedReasons = retainedReasons(res.RetainedLocations)
	s.NextAttemptAt, s.Message = nil, ""
	if dr.Spec.DryRun {
		s.Phase = privacyv1alpha1.StoreDryRun
		s.Message = fmt.Sprintf("would erase %d, mask %d, retain %d", res.Erased, res.Masked, res.Retained)
		return nil
	}
	s.Phase = privacyv1alpha1.StoreErasing
	st.markPlanned()
	return nil
}

// eraseStore applies the mapping and verifies right away.
func (r *DeletionRequestReconciler) eraseStore(ctx context.Context, cl connector.Client, dr *privacyv1alpha1.DeletionRequest, ids connector.Identifiers, s *privacyv1alpha1.DeletionStoreStatus, now time.Time) error {
	res, err := cl.Erase(ctx, connector.Request{ID: string(dr.UID), Identifiers: ids})
	metrics.StoreOperations.WithLabelValues(string(s.Type), "erase", result(err, res != nil && res.Pending)).Inc()
	if err != nil {
		return err
	}
	if res.Pending {
		s.Phase = privacyv1alpha1.StoreErasing
		s.Message = "the store accepted the erasure and is still working on it"
		s.NextAttemptAt = ptrTime(now.Add(pendingPoll))
		return nil
	}
	// A repeated erase (after a crash, or a stale read) finds nothing left: the plan holds the
	// counts of what this request erased.
	s.Erased = max(s.Planned.Erased, res.Erased)
	s.Masked = max(s.Planned.Masked, res.Masked)
	s.Retained = res.Retained
	s.RetainedReasons = retainedReasons(res.RetainedLocations)
	s.Phase = privacyv1alpha1.StoreErased
	return r.verifyStore(ctx, cl, dr, ids, s, now)
}

func (r *DeletionRequestReconciler) verifyStore(ctx context.Context, cl connector.Client, dr *privacyv1alpha1.DeletionRequest, ids connector.Identifiers, s *privacyv1alpha1.DeletionStoreStatus, now time.Time) error {
	res, err := cl.Verify(ctx, connector.Request{ID: string(dr.UID), Identifiers: ids, Deep: deep(dr)})
	metrics.StoreOperations.WithLabelValues(string(s.Type), "verify", result(err, res != nil && res.Pending)).Inc()
	if err != nil {
		return err
	}
	if res.Pending {
		s.Message = "erased; the store is still verifying"
		s.NextAttemptAt = ptrTime(now.Add(pendingPoll))
		return nil
	}
	s.Remaining = res.Remaining
	s.Retained = res.Retained
	s.RetainedReasons = retainedReasons(res.RetainedLocations)
	if res.Remaining > 0 {
		s.Phase = privacyv1alpha1.StoreErased
		s.Attempts++
		s.NextAttemptAt = ptrTime(requests.NextAttempt(now, s.Attempts, true))
		s.Message = "still holds records of the subject in " + describeLocations(res.RemainingLocations)
		return nil
	}
	s.Phase = privacyv1alpha1.StoreVerified
	s.VerifiedAt = ptrTime(now)
	s.NextAttemptAt, s.Message = nil, ""
	return nil
}

// advance sets the request's phase and conditions from its stores, and completes it when every
// store is verified.
func (r *DeletionRequestReconciler) advance(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, st *step) {
	var erased, verified, dry, failed, retrying int
	for i := range dr.Status.Stores {
		s := &dr.Status.Stores[i]
		switch s.Phase {
		case privacyv1alpha1.StoreVerified:
			verified++
			erased++
		case privacyv1alpha1.StoreErased:
			erased++
		case privacyv1alpha1.StoreDryRun:
			dry++
		case privacyv1alpha1.StoreFailed:
			failed++
		case privacyv1alpha1.StoreRetrying:
			retrying++
		}
		if s.NextAttemptAt != nil {
			st.at(s.NextAttemptAt.Time)
		}
	}
	n := len(dr.Status.Stores)
	conds := &dr.Status.Conditions
	gen := dr.Generation
	if dr.Spec.DryRun {
		if dry == n {
			dr.Status.Phase = privacyv1alpha1.PhaseCompleted
			dr.Status.CompletionTime = ptrTime(st.now)
			setCondition(conds, gen, privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonDryRun, "dry run: nothing was changed; status.stores[].planned shows what would be")
			st.normal(privacyv1alpha1.ReasonDryRun, "Plan", fmt.Sprintf("dry run planned over %d stores", n))
			return
		}
		setErasingCondition(conds, gen, failed, retrying, n-dry)
		return
	}
	switch {
	case verified == n:
		setCondition(conds, gen, privacyv1alpha1.ConditionErased, metav1.ConditionTrue, privacyv1alpha1.ReasonErased, fmt.Sprintf("all %d stores applied their mapping", n))
		setCondition(conds, gen, privacyv1alpha1.ConditionVerified, metav1.ConditionTrue, privacyv1alpha1.ReasonVerified, fmt.Sprintf("no store holds anything that identifies the subject (%d stores)", n))
		r.complete(ctx, dr, st)
	case erased == n:
		dr.Status.Phase = privacyv1alpha1.PhaseVerifying
		setCondition(conds, gen, privacyv1alpha1.ConditionErased, metav1.ConditionTrue, privacyv1alpha1.ReasonErased, fmt.Sprintf("all %d stores applied their mapping", n))
		if setCondition(conds, gen, privacyv1alpha1.ConditionVerified, metav1.ConditionFalse, privacyv1alpha1.ReasonDataRemains,
			fmt.Sprintf("%d of %d stores still hold records of the subject: %s", n-verified, n, storesWith(dr, privacyv1alpha1.StoreErased))) {
			st.warn(privacyv1alpha1.ReasonDataRemains, "Verify", "records of the subject remain in "+storesWith(dr, privacyv1alpha1.StoreErased))
		}
	default:
		dr.Status.Phase = privacyv1alpha1.PhaseErasing
		setErasingCondition(conds, gen, failed, retrying, n-erased)
	}
}

func setErasingCondition(conds *[]metav1.Condition, gen int64, failed, retrying, left int) {
	switch {
	case failed > 0:
		setCondition(conds, gen, privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreFailed,
			fmt.Sprintf("%d stores failed and are retried slowly until fixed; see status.stores", failed))
	case retrying > 0:
		setCondition(conds, gen, privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreUnavailable,
			fmt.Sprintf("%d stores are unavailable and retried with backoff; see status.stores", retrying))
	default:
		setCondition(conds, gen, privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonErasing,
			fmt.Sprintf("%d stores left", left))
	}
}

// complete records the first clean verification and issues the receipt.
func (r *DeletionRequestReconciler) complete(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, st *step) {
	if dr.Status.Receipt == nil {
		ref, err := r.issueReceipt(ctx, dr, st)
		if err != nil {
			// Stay in the current phase: the next reconcile issues it. A completed request
			// always has its receipt.
			logf.FromContext(ctx).Error(err, "issuing receipt")
			setCondition(&dr.Status.Conditions, dr.Generation, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonFailed, "issuing the receipt failed; retrying: "+err.Error())
			st.after(pendingPoll)
			return
		}
		dr.Status.Receipt = ref
	}
	dr.Status.Phase = privacyv1alpha1.PhaseCompleted
	dr.Status.CompletionTime = ptrTime(st.now)
	interval, period := reverifyTiming(dr)
	until := st.now.Add(period)
	v := &privacyv1alpha1.VerificationStatus{LastVerifiedAt: ptrTime(st.now), Verifications: 1, VerifyUntil: ptrTime(until)}
	v.NextVerificationAt = ptrTime(minTime(st.now.Add(interval), until))
	dr.Status.Verification = v
	st.at(v.NextVerificationAt.Time)
	if dr.Status.ReceivedAt != nil {
		metrics.TimeToVerified.Observe(st.now.Sub(dr.Status.ReceivedAt.Time).Seconds())
	}
	if !st.acceptedAtOnce {
		st.normal(privacyv1alpha1.ReasonVerified, "Verify", fmt.Sprintf("erasure verified in all %d stores; receipt %s issued", len(dr.Status.Stores), dr.Status.Receipt.ConfigMapName))
	}
}

// recordedPlan is what the receipt ConfigMap holds under receipt.PlanKey.
type recordedPlan struct {
	// RequestUID tells this request's plan from one left by a deleted request of the same name.
	RequestUID string         `json:"requestUID"`
	Stores     []plannedStore `json:"stores"`
}

type plannedStore struct {
	Kind privacyv1alpha1.StoreKind `json:"kind"`
	Name string                    `json:"name"`
	privacyv1alpha1.EraseCounts
}

// recordPlan creates the receipt ConfigMap holding the plan of the stores planned so far. When an
// earlier attempt crashed after recording its plan, that plan was counted before this request
// erased anything: its counts are kept where they are higher.
func (r *DeletionRequestReconciler) recordPlan(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, st *step) error {
	plan := recordedPlan{RequestUID: string(dr.UID)}
	for _, s := range dr.Status.Stores {
		if s.Planned != nil {
			plan.Stores = append(plan.Stores, plannedStore{Kind: s.Kind, Name: s.Name, EraseCounts: *s.Planned})
		}
	}
	raw, err := json.Marshal(plan)
	if err != nil {
		return err
	}
	cm, created, err := r.createReceiptConfigMap(ctx, dr, map[string]string{receipt.PlanKey: string(raw)})
	if err != nil {
		return err
	}
	st.receiptConfigMap = cm
	if created {
		return nil
	}
	var earlier recordedPlan
	if s := cm.Data[receipt.PlanKey]; s != "" {
		if err := json.Unmarshal([]byte(s), &earlier); err != nil || earlier.RequestUID != string(dr.UID) {
			st.receiptConfigMap = nil
			return fmt.Errorf("ConfigMap %q holds a plan that is not this request's", cm.Name)
		}
	}
	for _, e := range earlier.Stores {
		for i := range dr.Status.Stores {
			s := &dr.Status.Stores[i]
			if s.Kind == e.Kind && s.Name == e.Name && s.Planned != nil {
				s.Planned.Erased = max(s.Planned.Erased, e.Erased)
				s.Planned.Masked = max(s.Planned.Masked, e.Masked)
				s.Planned.Retained = max(s.Planned.Retained, e.Retained)
			}
		}
	}
	return nil
}

// createReceiptConfigMap creates the request's receipt ConfigMap with data. When it exists
// already (left by an earlier reconcile), it returns that one, created false, refusing a
// ConfigMap that is not this request's.
func (r *DeletionRequestReconciler) createReceiptConfigMap(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, data map[string]string) (cm *corev1.ConfigMap, created bool, err error) {
	cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace: dr.Namespace, Name: receipt.ConfigMapName(dr.Name),
		Labels: map[string]string{"app.kubernetes.io/managed-by": "dsr-operator", "privacy.dsr.dev/deletionrequest": dr.Name},
	}, Data: data}
	if err := ctrl.SetControllerReference(dr, cm, r.Scheme()); err != nil {
		return nil, false, err
	}
	if err := r.Create(ctx, cm); err == nil {
		return cm, true, nil
	} else if !apierrors.IsAlreadyExists(err) {
		return nil, false, fmt.Errorf("creating the receipt ConfigMap: %w", err)
	}
	var existing corev1.ConfigMap
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cm), &existing); err != nil {
		return nil, false, err
	}
	if !metav1.IsControlledBy(&existing, dr) {
		return nil, false, fmt.Errorf("ConfigMap %q exists and does not belong to this request", cm.Name)
	}
	return &existing, false, nil
}

func (r *DeletionRequestReconciler) issueReceipt(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, st *step) (*privacyv1alpha1.ReceiptReference, error) {
	now := st.now
	rc := &receipt.Receipt{
		Version: receipt.Version,
		Request: receipt.RequestRef{
			APIVersion: privacyv1alpha1.GroupVersion.String(), Kind: "DeletionRequest",
			Namespace: dr.Namespace, Name: dr.Name, UID: string(dr.UID),
		},
		SubjectDigest: dr.Status.SubjectDigest,
		Regulation:    string(dr.Spec.Regulation),
		CompletedAt:   now,
		IssuedAt:      now,
	}
	if dr.Status.ReceivedAt != nil {
		rc.ReceivedAt = dr.Status.ReceivedAt.Time
	}
	if dr.Status.Deadline != nil {
		rc.Deadline = dr.Status.Deadline.Time
	}
	for _, s := range dr.Status.Stores {
		rs := receipt.Store{Kind: string(s.Kind), Name: s.Name, Type: string(s.Type),
			Erased: s.Erased, Masked: s.Masked, Retained: s.Retained, Remaining: s.Remaining}
		if s.VerifiedAt != nil {
			rs.VerifiedAt = s.VerifiedAt.Time
		}
		for _, rr := range s.RetainedReasons {
			rs.RetainedReasons = append(rs.RetainedReasons, receipt.RetainedReason{Location: rr.Location, Records: rr.Records, Reason: rr.Reason})
		}
		rc.Stores = append(rc.Stores, rs)
	}
	signed, err := r.Signer.Sign(rc)
	if err != nil {
		return nil, err
	}
	if err := r.storeReceipt(ctx, dr, st, signed); err != nil {
		return nil, err
	}
	return &privacyv1alpha1.ReceiptReference{
		ConfigMapName: receipt.ConfigMapName(dr.Name), SHA256: signed.SHA256, Signature: receipt.EncodeSignature(signed.Signature),
		KeyID: signed.KeyID, IssuedAt: metav1.NewTime(rc.IssuedAt),
	}, nil
}

// storeReceipt writes the signed receipt into the request's ConfigMap, next to the plan: into
// the one this reconcile created, else into one an earlier reconcile left (status never pointed
// at a receipt in it, so that is replaced), else into a new one.
func (r *DeletionRequestReconciler) storeReceipt(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, st *step, signed *receipt.Signed) error {
	data := func(plan string) map[string]string {
		d := map[string]string{receipt.DataKey: string(signed.JSON), receipt.SignatureKey: receipt.EncodeSignature(signed.Signature)}
		if plan != "" {
			d[receipt.PlanKey] = plan
		}
		return d
	}
	if cm := st.receiptConfigMap; cm != nil {
		cm.Data = data(cm.Data[receipt.PlanKey])
		if err := r.Update(ctx, cm); err == nil {
			return nil
		}
		// Changed meanwhile (or the update failed): read it again below.
	}
	cm, created, err := r.createReceiptConfigMap(ctx, dr, data(""))
	if err != nil || created {
		return err
	}
	cm.Data = data(cm.Data[receipt.PlanKey])
	if err := r.Update(ctx, cm); err != nil {
		return fmt.Errorf("updating the receipt ConfigMap: %w", err)
	}
	return nil
}

// reverify checks every store again on the request's schedule, reports data that came back and,
// when asked, erases it again. After the period it deletes the identifiers Secret.
func (r *DeletionRequestReconciler) reverify(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, st *step) error {
	v := dr.Status.Verification
	if v == nil || v.NextVerificationAt == nil {
		return nil
	}
	if st.now.Before(v.NextVerificationAt.Time) {
		st.at(v.NextVerificationAt.Time)
		return nil
	}
	if v.VerifyUntil != nil && !st.now.Before(v.VerifyUntil.Time) {
		return r.endVerification(ctx, dr, st)
	}
	ids, ok, err := r.identifiers(ctx, dr, st)
	if err != nil || !ok {
		return err
	}
	interval, _ := reverifyTiming(dr)
	var reappeared, reErased []string
	failures := 0
	r.fanOut(ctx, dr, ids, nil, st, func(ctx context.Context, cl connector.Client, s *privacyv1alpha1.DeletionStoreStatus) error {
		res, err := cl.Verify(ctx, connector.Request{ID: string(dr.UID), Identifiers: ids, Deep: deep(dr)})
		metrics.StoreOperations.WithLabelValues(string(s.Type), "verify", result(err, res != nil && res.Pending)).Inc()
		if err != nil {
			return err
		}
		if res.Pending {
			return nil
		}
		s.Retained, s.RetainedReasons = res.Retained, retainedReasons(res.RetainedLocations)
		if res.Remaining == 0 {
			s.Phase, s.Remaining, s.Message = privacyv1alpha1.StoreVerified, 0, ""
			s.VerifiedAt = ptrTime(st.now)
			return nil
		}
		metrics.Reappearances.WithLabelValues(string(s.Type)).Inc()
		s.Phase, s.Remaining = privacyv1alpha1.StoreReappeared, res.Remaining
		s.Message = fmt.Sprintf("records of the subject reappeared in %s", describeLocations(res.RemainingLocations))
		reappeared = append(reappeared, storeLabel(s))
		if dr.Spec.Verification == nil || !dr.Spec.Verification.ReErase {
			return nil
		}
		er, err := cl.Erase(ctx, connector.Request{ID: string(dr.UID) + "/reerase/" + st.now.UTC().Format(time.RFC3339), Identifiers: ids})
		metrics.StoreOperations.WithLabelValues(string(s.Type), "erase", result(err, er != nil && er.Pending)).Inc()
		if err != nil || er.Pending {
			return err
		}
		again, err := cl.Verify(ctx, connector.Request{ID: string(dr.UID), Identifiers: ids, Deep: deep(dr)})
		if err != nil || again.Pending {
			return err
		}
		s.ReErasures++
		s.Message = fmt.Sprintf("%d records reappeared on %s and were erased again", er.Erased+er.Masked, st.now.UTC().Format(time.RFC3339))
		if again.Remaining == 0 {
			s.Phase, s.Remaining = privacyv1alpha1.StoreVerified, 0
			s.VerifiedAt = ptrTime(st.now)
			reErased = append(reErased, storeLabel(s))
		} else {
			s.Remaining = again.Remaining
		}
		return nil
	}, func() { failures++ })

	v.Verifications++
	v.LastVerifiedAt = ptrTime(st.now)
	next := st.now.Add(interval)
	if failures > 0 {
		next = minTime(next, st.now.Add(requests.MaxBackoff))
	}
	if v.VerifyUntil != nil {
		next = minTime(next, v.VerifyUntil.Time)
	}
	v.NextVerificationAt = ptrTime(next)
	st.at(next)
	if len(reappeared) > 0 {
		v.Reappearances++
		for _, name := range reappeared {
			st.warn(privacyv1alpha1.ReasonDataReappeared, "Verify", "records of the subject reappeared in "+name)
		}
		for _, name := range reErased {
			st.normal(privacyv1alpha1.ReasonReErased, "Erase", "reappeared records were erased again in "+name)
		}
	}
	still := storesWith(dr, privacyv1alpha1.StoreReappeared)
	switch {
	case still != "":
		dr.Status.Phase = privacyv1alpha1.PhaseReappeared
		setCondition(&dr.Status.Conditions, dr.Generation, privacyv1alpha1.ConditionVerified, metav1.ConditionFalse, privacyv1alpha1.ReasonDataReappeared,
			"records of the subject reappeared in "+still)
	case len(reErased) > 0:
		dr.Status.Phase = privacyv1alpha1.PhaseCompleted
		setCondition(&dr.Status.Conditions, dr.Generation, privacyv1alpha1.ConditionVerified, metav1.ConditionTrue, privacyv1alpha1.ReasonReErased,
			"reappeared records were erased again in "+joinNames(reErased))
	case failures == 0:
		dr.Status.Phase = privacyv1alpha1.PhaseCompleted
		setCondition(&dr.Status.Conditions, dr.Generation, privacyv1alpha1.ConditionVerified, metav1.ConditionTrue, privacyv1alpha1.ReasonVerified,
			fmt.Sprintf("no store holds anything that identifies the subject (%d stores, re-verification %d)", len(dr.Status.Stores), v.Verifications))
	}
	return nil
}

// endVerification closes the re-verification window: the operator stops keeping the very data it
// was asked to forget.
func (r *DeletionRequestReconciler) endVerification(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, st *step) error {
	v := dr.Status.Verification
	v.NextVerificationAt = nil
	if dr.Spec.Verification != nil && dr.Spec.Verification.KeepIdentifiersSecret {
		st.normal("VerificationEnded", "Verify", "re-verification period ended; identifiers Secret kept as spec.verification.keepIdentifiersSecret asks")
		return nil
	}
	if _, err := secretref.DeleteIdentifiers(ctx, r.Client, r.APIReader, dr, dr.Namespace, dr.Spec.Subject.IdentifiersSecretRef.Name); err != nil {
		return fmt.Errorf("deleting identifiers Secret: %w", err)
	}
	v.IdentifiersSecretDeleted = true
	st.normal("IdentifiersSecretDeleted", "Verify", "re-verification period ended; identifiers Secret deleted")
	return nil
}

// checkDeadline marks a request that is not complete when its regulation's deadline passes.
func (r *DeletionRequestReconciler) checkDeadline(dr *privacyv1alpha1.DeletionRequest, st *step) {
	checkDeadline(&dr.Status.RequestStatusCommon, dr.Generation, dr.Status.Phase == privacyv1alpha1.PhaseCompleted || dr.Status.Phase == privacyv1alpha1.PhaseReappeared, st)
}

// fanOut runs op on the request's stores that are due, at most StoreConcurrency at once, and
// records failures in each store's status. With resolved set (acceptance), it uses those stores;
// otherwise it re-reads each store named in the status. onFailure, if given, is called per failure.
func (r *DeletionRequestReconciler) fanOut(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, ids connector.Identifiers, resolved []stores.Store,
	st *step, op func(context.Context, connector.Client, *privacyv1alpha1.DeletionStoreStatus) error, onFailure ...func()) {
	reverifying := dr.Status.Phase == privacyv1alpha1.PhaseCompleted || dr.Status.Phase == privacyv1alpha1.PhaseReappeared
	var due []int
	for i := range dr.Status.Stores {
		s := &dr.Status.Stores[i]
		if !reverifying && (s.Phase == privacyv1alpha1.StoreVerified || s.Phase == privacyv1alpha1.StoreDryRun) {
			continue
		}
		if !reverifying && s.NextAttemptAt != nil && st.now.Before(s.NextAttemptAt.Time) {
			continue
		}
		due = append(due, i)
	}
	r.run(ctx, len(due), func(ctx context.Context, j int) {
		s := &dr.Status.Stores[due[j]]
		err := r.withStore(ctx, dr.Namespace, resolved, due[j], s.Kind, s.Name, func(cl connector.Client) error { return op(ctx, cl, s) })
		if err == nil {
			return
		}
		f := requests.Classify(err, ids)
		s.Attempts++
		s.NextAttemptAt = ptrTime(requests.NextAttempt(st.now, s.Attempts, f.Transient))
		s.Message = f.Message
		if !reverifying {
			prev := s.Phase
			if f.Transient {
				s.Phase = privacyv1alpha1.StoreRetrying
			} else {
				s.Phase = privacyv1alpha1.StoreFailed
			}
			if prev != s.Phase {
				st.warn(f.Reason, "Erase", fmt.Sprintf("%s: %s", storeLabel(s), f.Message))
			}
		}
		for _, fn := range onFailure {
			fn()
		}
	})
}

func (r *DeletionRequestReconciler) withStore(ctx context.Context, namespace string, resolved []stores.Store, i int, kind privacyv1alpha1.StoreKind, name string, fn func(connector.Client) error) error {
	var store *stores.Store
	if resolved != nil {
		store = &resolved[i]
	} else {
		s, err := stores.Get(ctx, r.Client, namespace, kind, name)
		if err != nil {
			return err
		}
		store = s
	}
	cl, err := r.Pool.Client(ctx, store, false)
	if err != nil {
		return err
	}
	return fn(cl)
}

// SetupWithManager registers the reconciler. Requests waiting for acceptance are woken when their
// identifiers Secret (metadata only) or a store in their namespace appears.
func (r *DeletionRequestReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, concurrency int) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &privacyv1alpha1.DeletionRequest{}, waitingForSecretIndex, func(o client.Object) []string {
		dr := o.(*privacyv1alpha1.DeletionRequest)
		if !unaccepted(dr.Status.Phase) {
			return nil
		}
		return []string{dr.Spec.Subject.IdentifiersSecretRef.Name}
	}); err != nil {
		return err
	}
	pending := func(ctx context.Context, ns string, opts ...client.ListOption) []reconcile.Request {
		var list privacyv1alpha1.DeletionRequestList
		if err := mgr.GetClient().List(ctx, &list, append(opts, client.InNamespace(ns))...); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if unaccepted(list.Items[i].Status.Phase) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
	return ctrl.NewControllerManagedBy(mgr).
		// The operator's own status writes wake nothing: every reconcile asks for the next one it
		// needs, and a status write would otherwise cost a reconcile that finds nothing to do.
		For(&privacyv1alpha1.DeletionRequest{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return pending(ctx, o.GetNamespace(), client.MatchingFields{waitingForSecretIndex: o.GetName()})
		}), builder.OnlyMetadata, builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(event.UpdateEvent) bool { return false }, DeleteFunc: func(event.DeleteEvent) bool { return false }})).
		Watches(&privacyv1alpha1.DataStore{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return pending(ctx, o.GetNamespace())
		}), builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(event.UpdateEvent) bool { return false }, DeleteFunc: func(event.DeleteEvent) bool { return false }})).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Named("deletionrequest").
		Complete(r)
}

func unaccepted(p privacyv1alpha1.RequestPhase) bool {
	return p == "" || p == privacyv1alpha1.PhasePending
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

func deep(dr *privacyv1alpha1.DeletionRequest) bool {
	return dr.Spec.Verification != nil && dr.Spec.Verification.Deep
}

func summarizeDeletion(dr *privacyv1alpha1.DeletionRequest) {
	conds := &dr.Status.Conditions
	gen := dr.Generation
	switch dr.Status.Phase {
	case privacyv1alpha1.PhaseCompleted:
		if dr.Spec.DryRun {
			setCondition(conds, gen, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonDryRun, "dry run complete; nothing was changed")
		} else if findCondition(*conds, privacyv1alpha1.ConditionVerified) != nil && findCondition(*conds, privacyv1alpha1.ConditionVerified).Status == metav1.ConditionTrue {
			setCondition(conds, gen, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, "erased and verified; receipt issued")
		} else {
			summarizeFrom(conds, gen, privacyv1alpha1.ConditionVerified)
		}
	case privacyv1alpha1.PhaseFailed:
		// identifiers() set Ready with the specific reason.
	default:
		summarizeFrom(conds, gen, privacyv1alpha1.ConditionAccepted, privacyv1alpha1.ConditionVerified, privacyv1alpha1.ConditionErased)
	}
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
			names = append(names, storeLabel(&dr.Status.Stores[i]))
		}
	}
	return joinNames(names)
}

func storeLabel(s *privacyv1alpha1.DeletionStoreStatus) string {
	return fmt.Sprintf("%s %s", s.Kind, s.Name)
}
