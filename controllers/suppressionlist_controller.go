package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/secretref"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// defaultSweepInterval is spec.sweepInterval for lists created before the CRD defaulted it.
const defaultSweepInterval = 24 * time.Hour

// dropPollInterval is how often a list reads its DROP download Secret for new content.
const dropPollInterval = time.Minute

// DefaultSweepRowsPerSecond bounds a store's sweep unless the manager says otherwise.
const DefaultSweepRowsPerSecond = 20000

// SuppressionListReconciler keeps a SuppressionList's entries (from a DROP download; the
// DeletionRequest controller adds those of ended requests) and sweeps the stores for them on the
// list's interval (docs/suppression.md).
type SuppressionListReconciler struct {
	Dependencies
	// Key keys the hashes of lists fed by DeletionRequests.
	Key []byte
	// RowsPerSecond bounds what one store's sweep reads per second (0: DefaultSweepRowsPerSecond,
	// negative: unbounded).
	RowsPerSecond int
	// PageSize is the most values one sweep query reads.
	PageSize int
}

// The list's entries are Secrets read and deleted by name (never listed or watched: the index
// names every chunk); the report Secret is created, then updated. Chunks and the report are owned
// by the list with blockOwnerDeletion, which clusters enforcing OwnerReferencesPermission allow
// only to who may update the list's finalizers.
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=suppressionlists,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=suppressionlists/status,verbs=get;patch
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=suppressionlists/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// suppressionScope is what one reconcile of a list works with.
type suppressionScope struct {
	list    *privacyv1alpha1.SuppressionList
	loaded  *suppression.Loaded
	storage suppression.Storage
	now     time.Time
	effect  *effects
	// sourceProblem: the DROP download Secret is missing, not opted in or refused; Ready says so
	// until it is fixed, whatever the sweeps find.
	sourceProblem bool
	// interval is the list's sweep interval; sweepFailed: a store could not be swept, and the
	// sweep is tried again after sweepRetryDelay(interval) instead.
	interval    time.Duration
	sweepFailed bool
}

// sweepRetryDelay is how soon a sweep in which a store failed is tried again: an eighth of the
// interval, from 10 seconds to 15 minutes, so that a store down for a moment is not left unswept
// for a whole interval (up to 45 days) and a store down for long is not hammered.
func sweepRetryDelay(interval time.Duration) time.Duration {
	return min(max(interval/8, 10*time.Second), 15*time.Minute, interval)
}

// Reconcile applies a new DROP download, then sweeps when due.
func (r *SuppressionListReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	list := &privacyv1alpha1.SuppressionList{}
	if err := r.Get(ctx, req.NamespacedName, list); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !list.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	orig := list.DeepCopy()
	now := r.now()
	s := &suppressionScope{list: list, now: now, effect: &effects{now: now},
		storage: suppression.Storage{Client: r.Client, Reader: r.APIReader}}
	err := r.reconcileList(ctx, s)
	if err != nil && !errors.Is(err, suppression.ErrConflict) {
		setCondition(&list.Status.Conditions, list.Generation, privacyv1alpha1.ConditionReady, metav1.ConditionFalse,
			privacyv1alpha1.ReasonSweepFailed, "the list could not be read or written: "+safeMessage(err))
		s.effect.after(time.Minute)
	}
	if err == nil {
		list.Status.ObservedGeneration = list.Generation
	}
	if !equality.Semantic.DeepEqual(&orig.Status, &list.Status) {
		patch := client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})
		if uerr := r.Status().Patch(ctx, list, patch); uerr != nil {
			if apierrors.IsConflict(uerr) {
				return ctrl.Result{RequeueAfter: conflictRetry}, nil
			}
			return ctrl.Result{}, uerr
		}
	}
	s.effect.emit(r.Recorder, list)
	if errors.Is(err, suppression.ErrConflict) {
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	return s.effect.result(), nil
}

func (r *SuppressionListReconciler) reconcileList(ctx context.Context, s *suppressionScope) error {
	list := s.list
	loaded, err := s.storage.Load(ctx, list)
	if err != nil {
		return err
	}
	s.loaded = loaded
	if ref := list.Spec.Source.DropSecretRef; ref != nil {
		if err := r.applyDownload(ctx, s, ref.Name); err != nil {
			return err
		}
		if c := readyCondition(list); !s.sourceProblem && c != nil &&
			(c.Reason == privacyv1alpha1.ReasonEntriesInvalid || c.Reason == privacyv1alpha1.ReasonSourceInvalid) {
			setCondition(&list.Status.Conditions, list.Generation, privacyv1alpha1.ConditionReady, metav1.ConditionTrue,
				privacyv1alpha1.ReasonDownloadApplied, "the DROP download Secret was read and applied")
		}
	}
	if list.Spec.Source.DropSecretRef != nil {
		// Secrets are not watched: a new download is noticed within a minute.
		s.effect.after(dropPollInterval)
	}
	list.Status.Entries = int64(s.loaded.Set.Len())
	list.Status.SourceDigest = s.loaded.Index.SourceDigest
	interval := defaultSweepInterval
	if list.Spec.SweepInterval != nil && list.Spec.SweepInterval.Duration > 0 {
		interval = list.Spec.SweepInterval.Duration
	}
	s.interval = interval
	next := list.Status.NextSweepTime
	if next != nil && s.now.Before(next.Time) && !next.After(s.now.Add(interval)) {
		s.effect.at(next.Time)
		return nil
	}
	if err := r.sweep(ctx, s); err != nil {
		return err
	}
	if s.sweepFailed {
		interval = sweepRetryDelay(interval)
	}
	list.Status.NextSweepTime = ptrTime(s.now.Add(interval))
	s.effect.after(interval)
	return nil
}

// applyDownload reads the DROP download Secret and, when its content is new, applies it on top
// of what is stored: its items added (an item already held keeps its status unless its hash
// changed), its withdrawn IDs removed. A download that does not parse changes nothing stored: the
// list keeps sweeping for what it holds and Ready says which line to fix.
func (r *SuppressionListReconciler) applyDownload(ctx context.Context, s *suppressionScope, name string) error {
	list := s.list
	secret, err := secretref.Get(ctx, r.APIReader, list.Namespace, name, privacyv1alpha1.SecretTypeSuppressionList)
	if err != nil {
		if apierrors.IsNotFound(err) || secretref.IsNotOptedIn(err) {
			msg := fmt.Sprintf("DROP download Secret %q not found", name)
			if secretref.IsNotOptedIn(err) {
				msg = err.Error()
			}
			setCondition(&list.Status.Conditions, list.Generation, privacyv1alpha1.ConditionReady, metav1.ConditionFalse,
				privacyv1alpha1.ReasonSourceInvalid, msg)
			s.effect.after(time.Minute)
			s.sourceProblem = true
			return nil
		}
		return err
	}
	download, err := suppression.ParseDownload(secret.Data)
	if err != nil {
		setCondition(&list.Status.Conditions, list.Generation, privacyv1alpha1.ConditionReady, metav1.ConditionFalse,
			privacyv1alpha1.ReasonEntriesInvalid, fmt.Sprintf("DROP download Secret %q refused, nothing stored was changed: %v", name, err))
		s.effect.warn(privacyv1alpha1.ReasonEntriesInvalid, "Load", fmt.Sprintf("DROP download refused: %v", err))
		s.sourceProblem = true
		return nil
	}
	if download.Digest == s.loaded.Index.SourceDigest {
		return nil
	}
	loaded, err := s.storage.Update(ctx, list, func(l *suppression.Loaded) (string, bool, error) {
		// A sweep interrupted before this download resumes no more: its finished stores were
		// not swept for the new items, which it would otherwise call not found.
		l.Index.Sweep = nil
		// Its marks go too: an erasing mark is resolved by the next pass over the store that set
		// it, and the store swept first now may be another one.
		for i, e := range l.Set.Entries() {
			switch {
			case e.Status == suppression.StatusFound:
				l.Set.SetStatus(i, suppression.StatusNone)
			case e.Status.Erasing():
				l.Set.SetStatus(i, e.Status.Base())
			}
		}
		return download.Digest, true, applyItems(l.Set, download)
	})
	if err != nil {
		return err
	}
	s.loaded = loaded
	// A new download is swept at once.
	list.Status.NextSweepTime = nil
	s.effect.normal(privacyv1alpha1.ReasonDownloadApplied, "Load",
		fmt.Sprintf("DROP download applied: %d items, %d withdrawn; the list holds %d", len(download.Items), len(download.Withdrawn), loaded.Set.Len()))
	return nil
}

// applyItems merges a download into set.
func applyItems(set *suppression.Set, d *suppression.Download) error {
	held := map[string]suppression.Entry{}
	for _, e := range set.Entries() {
		held[e.ID] = e
	}
	remove := map[string]bool{}
	for id := range d.Withdrawn {
		remove[id] = true
	}
	var add []suppression.Entry
	for _, item := range d.Items {
		if old, ok := held[item.ID]; ok {
			if old.Hash == item.Hash && old.Kind == item.Kind {
				continue
			}
			remove[item.ID] = true
		}
		add = append(add, item)
	}
	set.RemoveIDs(remove)
	set.Add(add...)
	return nil
}

// SetupWithManager registers the reconciler. Spec changes and status writes of others are what
// it reacts to; sweeps are scheduled by RequeueAfter.
func (r *SuppressionListReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&privacyv1alpha1.SuppressionList{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("suppressionlist").
		Complete(r)
}

// safeMessage is an error's text for status: the storage's own errors name Secrets and counts,
// never entries.
func safeMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return fmt.Sprintf("API server: %s", status.Status().Reason)
	}
	return err.Error()
}
