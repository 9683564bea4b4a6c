package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/stores"
	"github.com/dsr-operator/dsr-operator/internal/subject"
)

const (
	// rejectedRetry is how soon a request that could not be accepted is tried again: the portal
	// may create the identifiers Secret or a store right after the request.
	rejectedRetry = 30 * time.Second
	// pendingPoll is how soon a store that answered "pending" (an asynchronous processor) is asked
	// again, and how soon a failed receipt or export write is tried again.
	pendingPoll = 15 * time.Second
	// safetyNetInterval bounds how long an unfinished request goes unvisited, whatever a code path
	// forgot to schedule: its spec never changes, so no event would wake it.
	safetyNetInterval = 5 * time.Minute
	// conflictRetry is how soon a reconcile whose status write lost a race is repeated.
	conflictRetry = time.Second
)

// blockingFailure is a failure that keeps a request from going on until it is fixed or retried;
// Ready shows it.
type blockingFailure struct {
	reason  string
	message string
}

// requestFacts is what one reconcile learned that the status does not hold but its conditions must
// show. Phase code records it; only the status functions turn it into conditions.
type requestFacts struct {
	// refusal: the request could not be accepted.
	refusal *requests.Rejection
	// subjectProblem: the identifiers Secret could not be read again.
	subjectProblem *subject.Problem
	// blocked: a failure that stops the request (a receipt or export that could not be written,
	// identifiers changed under the request).
	blocked *blockingFailure
	// unmapped: stores whose deep verification newly found copies of the subject's identifiers
	// outside the mapping, each with where (never a value).
	unmapped []string
}

// requestScope is what both request kinds' reconciles work with, built once per reconcile.
type requestScope struct {
	deps   *Dependencies
	object client.Object
	// before is the object as last read or written, the base of the status patch.
	before client.Object
	spec   *privacyv1alpha1.RequestSpecCommon
	status *privacyv1alpha1.RequestStatusCommon
	now    time.Time
	log    logr.Logger
	effect *effects
	facts  requestFacts
	// identifiers are the subject's, once read in this reconcile.
	identifiers connector.Identifiers
	// values and shared are the values derived from them at acceptance (request_linked.go).
	values, shared connector.Values
	// derivedByStore are the derived identifiers of each accepted store, for its status; set
	// with acceptedStores when the request uses linked data.
	derivedByStore [][]privacyv1alpha1.DerivedIdentifier
	// planWhileDeriving asks the stores to count, while they derive, what an erasure would do;
	// derivedPlans are the counts that still stand once every store has derived, by store.
	planWhileDeriving bool
	derivedPlans      map[int]*connector.EraseResult
	// progress returns each store's progress in the request's status.
	progress func() []*privacyv1alpha1.StoreProgress
	// acceptedStores are the stores resolved when the request was accepted in this reconcile, in
	// the order of its status; nil otherwise (each store is read again).
	acceptedStores []stores.Store
	// conflicted: a status write lost a race; the reconcile ends and is repeated.
	conflicted bool
	// clientOverride, when set, replaces the store pool (tests use scripted clients).
	clientOverride func(kind privacyv1alpha1.StoreKind, name string) (connector.Client, error)
}

func newRequestScope(ctx context.Context, deps *Dependencies, obj client.Object, spec *privacyv1alpha1.RequestSpecCommon, status *privacyv1alpha1.RequestStatusCommon) requestScope {
	now := deps.now()
	return requestScope{
		deps: deps, object: obj, before: obj.DeepCopyObject().(client.Object), spec: spec, status: status,
		now: now, log: logf.FromContext(ctx), effect: &effects{now: now},
	}
}

// accept resolves the request's subject and stores and starts its clock. It returns nil, nil when
// the request was refused: facts.refusal says why, and the request is looked at again later.
func (s *requestScope) accept(ctx context.Context) (*requests.Acceptance, error) {
	receivedAt, deadline, err := requests.Clock(s.object, s.spec)
	if err != nil {
		s.status.Phase = privacyv1alpha1.PhasePending
		s.facts.refusal = requests.RegulationRejection(err)
		s.effect.after(rejectedRetry)
		return nil, nil
	}
	s.status.ReceivedAt = ptrTime(receivedAt)
	s.status.Deadline = ptrTime(deadline)
	acc, err := requests.Accept(ctx, s.deps.Client, s.deps.APIReader, s.deps.Salt, s.object, s.spec)
	if err != nil {
		var rej *requests.Rejection
		if !errors.As(err, &rej) {
			return nil, err
		}
		s.status.Phase = privacyv1alpha1.PhasePending
		s.facts.refusal = rej
		s.effect.after(rejectedRetry)
		return nil, nil
	}
	s.status.SubjectDigest = acc.SubjectDigest
	s.identifiers = acc.Identifiers
	s.acceptedStores = acc.Stores
	return acc, nil
}

// wasRefused reports whether an earlier reconcile refused the request.
func (s *requestScope) wasRefused() bool {
	c := meta.FindStatusCondition(s.status.Conditions, privacyv1alpha1.ConditionAccepted)
	return c != nil && c.Status == metav1.ConditionFalse
}

// readIdentifiers reads an accepted request's identifiers again. A missing or invalid Secret is
// recorded and retried; a Secret whose contents changed since acceptance fails the request, since
// working for someone else under the same request would make its record a lie.
func (s *requestScope) readIdentifiers(ctx context.Context) (bool, error) {
	name := s.spec.Subject.IdentifiersSecretRef.Name
	ids, err := subject.Read(ctx, s.deps.APIReader, s.object.GetNamespace(), name)
	if err != nil {
		var p *subject.Problem
		if !errors.As(err, &p) {
			return false, err
		}
		s.facts.subjectProblem = p
		s.effect.after(rejectedRetry)
		return false, nil
	}
	if subject.Digest(s.deps.Salt, ids) != s.status.SubjectDigest {
		s.status.Phase = privacyv1alpha1.PhaseFailed
		s.facts.blocked = &blockingFailure{privacyv1alpha1.ReasonIdentifiersInvalid,
			fmt.Sprintf("identifiers Secret %q changed after the request was accepted; create a new request for a different subject", name)}
		return false, nil
	}
	s.identifiers = ids
	if err := s.readDerived(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// storeClient returns the client of the i-th store of the request's status.
func (s *requestScope) storeClient(ctx context.Context, i int, kind privacyv1alpha1.StoreKind, name string) (connector.Client, func(), error) {
	if s.clientOverride != nil {
		cl, err := s.clientOverride(kind, name)
		return cl, nil, err
	}
	var store *stores.Store
	if s.acceptedStores != nil {
		store = &s.acceptedStores[i]
	} else {
		var err error
		if store, err = stores.Get(ctx, s.deps.Client, s.object.GetNamespace(), kind, name); err != nil {
			return nil, nil, err
		}
	}
	// The lease keeps the client open until the operation ends, even if the store's Secret
	// rotates meanwhile.
	lease, err := s.deps.Pool.Acquire(ctx, store, false)
	if err != nil {
		return nil, nil, err
	}
	return lease.Client(), lease.Release, nil
}

// fanOut is the request's fan-out settings.
func (s *requestScope) fanOut(clientOf func(context.Context, int) (connector.Client, func(), error)) requests.FanOut {
	return requests.FanOut{Now: s.now, Limit: s.deps.StoreConcurrency, Identifiers: s.identifiers, Client: clientOf}
}

// writeStatus patches the status when it changed, with optimistic locking so that a reconcile
// working from a stale read cannot overwrite newer progress, then emits the gathered events. A
// write that lost a race marks the scope conflicted: the reconcile ends and is repeated, and the
// next one sees the newer status and repeats nothing harmful. beforeStatus and status are the
// status of s.before and of the object.
func (s *requestScope) writeStatus(ctx context.Context, beforeStatus, status any) (ctrl.Result, error) {
	if !equality.Semantic.DeepEqual(beforeStatus, status) {
		err := s.deps.Status().Patch(ctx, s.object, statusPatch(s.before, beforeStatus, status))
		if apierrors.IsConflict(err) {
			s.conflicted = true
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("patching status: %w", err)
		}
		s.before = s.object.DeepCopyObject().(client.Object)
	}
	s.effect.emit(s.deps.Recorder, s.object)
	return s.effect.result(), nil
}

// deriveDeadline sets DeadlineExceeded. A request finished late keeps DeadlineExceeded=True: it is
// a fact about the request an auditor must see. A finished request (Failed included) never becomes
// late afterwards.
func deriveDeadline(status *privacyv1alpha1.RequestStatusCommon, gen int64, finished bool, e *effects) {
	if status.Deadline == nil {
		return
	}
	c := meta.FindStatusCondition(status.Conditions, privacyv1alpha1.ConditionDeadlineExceeded)
	if c != nil && c.Status == metav1.ConditionTrue {
		return
	}
	if !finished && !e.now.Before(status.Deadline.Time) {
		msg := fmt.Sprintf("the deadline %s passed before the request completed", status.Deadline.UTC().Format(time.RFC3339))
		setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionDeadlineExceeded, metav1.ConditionTrue, privacyv1alpha1.ReasonDeadlineExceeded, msg)
		e.warn(privacyv1alpha1.ReasonDeadlineExceeded, "Deadline", msg)
		return
	}
	setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionDeadlineExceeded, metav1.ConditionFalse, privacyv1alpha1.ReasonWithinDeadline,
		"deadline "+status.Deadline.UTC().Format(time.RFC3339))
	if !finished {
		e.at(status.Deadline.Time)
	}
}

// deriveAccepted sets Accepted from the refusal of this reconcile, or True once the request went on.
func deriveAccepted(status *privacyv1alpha1.RequestStatusCommon, gen int64, facts *requestFacts, storeCount int, e *effects) {
	switch {
	case facts.refusal != nil:
		if setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionAccepted, metav1.ConditionFalse, facts.refusal.Reason, facts.refusal.Message) {
			e.warn(facts.refusal.Reason, "Accept", facts.refusal.Message)
		}
	case status.Phase != "" && status.Phase != privacyv1alpha1.PhasePending:
		setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionAccepted, metav1.ConditionTrue,
			privacyv1alpha1.ReasonAccepted, fmt.Sprintf("subject resolved; %d stores", storeCount))
	}
}

// deriveSubjectProblem shows an identifiers Secret that could not be read again on cond (the
// condition the request waits for). It reports whether it did.
func deriveSubjectProblem(status *privacyv1alpha1.RequestStatusCommon, gen int64, facts *requestFacts, cond string, e *effects) bool {
	p := facts.subjectProblem
	if p == nil {
		return false
	}
	if setCondition(&status.Conditions, gen, cond, metav1.ConditionFalse, p.Reason, "cannot read the subject: "+p.Message) {
		e.warn(p.Reason, "ReadSubject", p.Message)
	}
	return true
}

// deriveBlockedReady shows a blocking failure on Ready, with a Warning event when Ready turns to it.
// It reports whether there was one.
func deriveBlockedReady(status *privacyv1alpha1.RequestStatusCommon, gen int64, facts *requestFacts, e *effects) bool {
	b := facts.blocked
	if b == nil {
		return false
	}
	if setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, b.reason, b.message) {
		e.warn(b.reason, "Reconcile", b.message)
	}
	return true
}

// readyFromFirstNotTrue sets Ready=False from the first of the given conditions that is not True
// (in the order given), or Reconciling when every one is True or unset.
func readyFromFirstNotTrue(status *privacyv1alpha1.RequestStatusCommon, gen int64, types ...string) {
	for _, t := range types {
		c := meta.FindStatusCondition(status.Conditions, t)
		if c != nil && c.Status != metav1.ConditionTrue {
			setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, c.Reason, c.Message)
			return
		}
	}
	setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonReconciling, "in progress")
}

// scheduleUnfinished asks for a reconcile when the first store backing off is due, and at most
// safetyNetInterval from now, for a request that is not finished.
func scheduleUnfinished(e *effects, progress []*privacyv1alpha1.StoreProgress) {
	for _, p := range progress {
		if p.NextAttemptAt != nil {
			e.at(p.NextAttemptAt.Time)
		}
	}
	e.after(safetyNetInterval)
}
