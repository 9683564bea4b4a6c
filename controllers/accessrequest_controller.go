package controllers

import (
	"context"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/export"
)

const defaultExportTTL = 168 * time.Hour

// AccessRequestReconciler collects a subject's records from every store a request may use, delivers
// them as one export Secret and deletes the export when its TTL passes.
type AccessRequestReconciler struct {
	Dependencies
	// MaxExportBytes bounds the export (export.MaxBytes when 0).
	MaxExportBytes int
	// ReportContext is the installation's controller, data protection officer and supervisory
	// authorities for access reports (nil: the reports list them as missing).
	ReportContext *export.Installation
	// SpoolDir is where collected records wait on disk while the export is rendered
	// (os.TempDir() when empty).
	SpoolDir string
}

// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=accessrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=accessrequests/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update;delete

// accessScope is what one reconcile of an AccessRequest works with.
type accessScope struct {
	requestScope
	request *privacyv1alpha1.AccessRequest
	// collected holds each store's records when every store answered in this reconcile.
	collected []export.StoreInput
	// spool holds the collected records on disk; it is released when the reconcile ends.
	spool *export.Spool
}

// accessPhase is one part of a reconcile. It returns false when the reconcile ends after it.
type accessPhase func(context.Context, *accessScope) (bool, error)

// Reconcile moves one access request one step along its life: read it, build its scope, run the
// phase functions of its phase, and write the status derived from what they recorded.
func (r *AccessRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	ar := &privacyv1alpha1.AccessRequest{}
	if err := r.Get(ctx, req.NamespacedName, ar); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if done, err := r.guardDestination(ctx, ar); done || err != nil {
		return ctrl.Result{}, err
	}
	if !ar.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	scope := &accessScope{
		requestScope: newRequestScope(ctx, &r.Dependencies, ar, &ar.Spec.RequestSpecCommon, &ar.Status.RequestStatusCommon),
		request:      ar,
	}
	scope.progress = func() []*privacyv1alpha1.StoreProgress { return accessProgress(ar) }
	defer func() { _ = scope.spool.Close() }()
	defer func() {
		written, writeErr := scope.writeDerivedStatus(ctx, err == nil)
		if err == nil {
			result, err = written, writeErr
		}
	}()
	for _, phase := range r.phasesFor(ar) {
		if proceed, err := phase(ctx, scope); err != nil || !proceed {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// phasesFor lists the phase functions of the request's phase.
func (r *AccessRequestReconciler) phasesFor(ar *privacyv1alpha1.AccessRequest) []accessPhase {
	switch ar.Status.Phase {
	case "", privacyv1alpha1.PhasePending:
		return []accessPhase{r.acceptRequest, r.collectFromDueStores, r.deliverExport}
	case privacyv1alpha1.PhaseCollecting:
		return []accessPhase{r.readIdentifiers, r.collectFromDueStores, r.deliverExport}
	case privacyv1alpha1.PhaseCompleted:
		return []accessPhase{r.expireExport}
	}
	return nil
}

// writeDerivedStatus derives the conditions from what the reconcile recorded, and writes the status
// when it changed. ObservedGeneration moves only when the reconcile succeeded.
func (s *accessScope) writeDerivedStatus(ctx context.Context, succeeded bool) (ctrl.Result, error) {
	if s.conflicted {
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	ar := s.request
	deriveAccessStatus(ar, &s.facts, s.effect)
	if succeeded {
		ar.Status.ObservedGeneration = ar.Generation
	}
	if !ar.IsFinished() {
		scheduleUnfinished(s.effect, accessProgress(ar))
	}
	before := s.before.(*privacyv1alpha1.AccessRequest)
	return s.writeStatus(ctx, before.Status, ar.Status)
}

// accessProgress returns each store's progress, in the order of the status.
func accessProgress(ar *privacyv1alpha1.AccessRequest) []*privacyv1alpha1.StoreProgress {
	progress := make([]*privacyv1alpha1.StoreProgress, len(ar.Status.Stores))
	for i := range ar.Status.Stores {
		progress[i] = &ar.Status.Stores[i].StoreProgress
	}
	return progress
}

// SetupWithManager registers the reconciler.
func (r *AccessRequestReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		// The operator's own status writes wake nothing: every reconcile asks for the next one it
		// needs (and the safety net bounds the wait of an unfinished request).
		For(&privacyv1alpha1.AccessRequest{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Named("accessrequest").
		Complete(r)
}
