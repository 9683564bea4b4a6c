package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

// Defaults of spec.verification, for requests created before the CRD defaulted them.
const (
	defaultReverifyInterval = time.Hour
	defaultReverifyPeriod   = 720 * time.Hour
)

// DeletionRequestReconciler erases a subject's data from every store a request may use, verifies
// the erasure, keeps re-verifying for a window and signs a receipt.
type DeletionRequestReconciler struct {
	Dependencies
	Signer *receipt.Signer
	// SuppressionKey keys the hashes added to SuppressionLists fed by DeletionRequests.
	SuppressionKey []byte
}

// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=deletionrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=deletionrequests/status,verbs=get;patch
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=datastores;clusterdatastores,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// deletionScope is what one reconcile of a DeletionRequest works with.
type deletionScope struct {
	requestScope
	request *privacyv1alpha1.DeletionRequest
	// acceptedAtOnce: this reconcile accepted a request that had never been refused, so there is
	// no recovery for a Normal event to report.
	acceptedAtOnce bool
	// planned counts the stores this reconcile planned and has yet to erase.
	planned int
	// receiptConfigMap is the receipt ConfigMap as this reconcile wrote or read it (holding the
	// plan), so that the receipt is added with one update.
	receiptConfigMap *corev1.ConfigMap
	// reverification is what the re-verification of this reconcile found, when one ran.
	reverification *reverificationOutcome
}

// deletionPhase is one part of a reconcile. It returns false when the reconcile ends after it.
type deletionPhase func(context.Context, *deletionScope) (bool, error)

// Reconcile moves one request one step along its life: read it, build its scope, run the phase
// functions of its phase, and write the status derived from what they recorded. Every phase is
// idempotent: a crash at any point, or a stale read, repeats work that finds nothing left to do.
func (r *DeletionRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	dr := &privacyv1alpha1.DeletionRequest{}
	if err := r.Get(ctx, req.NamespacedName, dr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !dr.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	scope := &deletionScope{
		requestScope: newRequestScope(ctx, &r.Dependencies, dr, &dr.Spec.RequestSpecCommon, &dr.Status.RequestStatusCommon),
		request:      dr,
	}
	scope.progress = func() []*privacyv1alpha1.StoreProgress { return deletionProgress(dr) }
	defer func() {
		written, writeErr := scope.writeDerivedStatus(ctx, err == nil)
		if err == nil {
			result, err = written, writeErr
		}
	}()
	for _, phase := range r.phasesFor(dr) {
		if proceed, err := phase(ctx, scope); err != nil || !proceed {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// phasesFor lists the phase functions of the request's phase.
func (r *DeletionRequestReconciler) phasesFor(dr *privacyv1alpha1.DeletionRequest) []deletionPhase {
	switch dr.Status.Phase {
	case "", privacyv1alpha1.PhasePending:
		return []deletionPhase{r.acceptRequest, r.planAcceptedStores, r.eraseNewlyPlanned, r.settleRequestPhase}
	case privacyv1alpha1.PhaseErasing, privacyv1alpha1.PhaseVerifying:
		return []deletionPhase{r.readIdentifiers, r.workOnDueStores, r.eraseNewlyPlanned, r.settleRequestPhase}
	case privacyv1alpha1.PhaseCompleted, privacyv1alpha1.PhaseReappeared:
		if dr.Spec.DryRun {
			return nil
		}
		return []deletionPhase{r.reverifyWhenDue}
	}
	return nil
}

// writeDerivedStatus derives the conditions from what the reconcile recorded, and writes the status
// when it changed. ObservedGeneration moves only when the reconcile succeeded.
func (s *deletionScope) writeDerivedStatus(ctx context.Context, succeeded bool) (ctrl.Result, error) {
	if s.conflicted {
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	dr := s.request
	before := s.before.(*privacyv1alpha1.DeletionRequest)
	s.facts.unmapped = newUnmappedFindings(before, dr)
	deriveDeletionStatus(dr, &s.facts, s.reverification, s.effect)
	if succeeded {
		dr.Status.ObservedGeneration = dr.Generation
	}
	if !dr.IsFinished() {
		scheduleUnfinished(s.effect, deletionProgress(dr))
	}
	return s.writeStatus(ctx, before.Status, dr.Status)
}

// checkpoint writes the status mid-reconcile (and emits the events gathered so far). It reports
// false when the reconcile must end.
func (s *deletionScope) checkpoint(ctx context.Context) (bool, error) {
	if _, err := s.writeDerivedStatus(ctx, true); err != nil || s.conflicted {
		return false, err
	}
	// The rest of the reconcile asks anew when to look again.
	s.effect.next = time.Time{}
	return true, nil
}

// deletionProgress returns each store's progress, in the order of the status.
func deletionProgress(dr *privacyv1alpha1.DeletionRequest) []*privacyv1alpha1.StoreProgress {
	progress := make([]*privacyv1alpha1.StoreProgress, len(dr.Status.Stores))
	for i := range dr.Status.Stores {
		progress[i] = &dr.Status.Stores[i].StoreProgress
	}
	return progress
}

// SetupWithManager registers the reconciler. Requests waiting for acceptance are woken when a store
// appears in their namespace; a missing identifiers Secret is looked for again every
// rejectedRetry (the operator neither lists nor watches Secrets).
func (r *DeletionRequestReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, concurrency int) error {
	pending := func(ctx context.Context, ns string) []reconcile.Request {
		var list privacyv1alpha1.DeletionRequestList
		if err := mgr.GetClient().List(ctx, &list, client.InNamespace(ns)); err != nil {
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
