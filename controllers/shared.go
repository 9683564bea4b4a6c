// Package controllers holds one reconciler per kind: DataStore, ClusterDataStore, DeletionRequest
// and AccessRequest.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/metrics"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/stores"
	"github.com/dsr-operator/dsr-operator/internal/subject"
)

// Shared is what every reconciler of the operator needs.
type Shared struct {
	client.Client
	// APIReader reads Secrets directly: the operator never caches Secrets cluster-wide.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Pool      *stores.Pool
	// Salt is the installation's salt for subject digests.
	Salt []byte
	// StoreConcurrency bounds how many stores one request works on at once.
	StoreConcurrency int
	// Now is the clock; tests leave it nil.
	Now func() time.Time
}

func (s *Shared) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Scheme is the manager's scheme, for owner references.
func (s *Shared) Scheme() *runtime.Scheme { return s.Client.Scheme() }

// run calls fn for i in [0, n) with at most StoreConcurrency calls at once.
func (s *Shared) run(ctx context.Context, n int, fn func(context.Context, int)) {
	limit := s.StoreConcurrency
	if limit <= 0 {
		limit = 8
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(ctx, i)
		}()
	}
	wg.Wait()
}

// step gathers what one reconcile decided beyond the status: events to emit once the status is
// written (so a conflicting write does not repeat them) and when to look again.
type step struct {
	now    time.Time
	events []pendingEvent
	next   time.Time
	mu     sync.Mutex
	// acceptedAtOnce: this reconcile accepted a request that had never been refused, so there is
	// no recovery for a Normal event to report.
	acceptedAtOnce bool
	// planned counts the stores this reconcile planned and has yet to erase.
	planned int
	// receiptConfigMap is the receipt ConfigMap as this reconcile wrote or read it (holding the
	// plan), so that the receipt is added with one update.
	receiptConfigMap *corev1.ConfigMap
}

func (s *step) markPlanned() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.planned++
}

type pendingEvent struct{ typ, reason, action, note string }

func (s *step) normal(reason, action, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, pendingEvent{corev1.EventTypeNormal, reason, action, note})
}

func (s *step) warn(reason, action, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, pendingEvent{corev1.EventTypeWarning, reason, action, note})
}

// at asks for a reconcile no later than t.
func (s *step) at(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next.IsZero() || t.Before(s.next) {
		s.next = t
	}
}

func (s *step) after(d time.Duration) { s.at(s.now.Add(d)) }

func (s *step) result() ctrl.Result {
	if s.next.IsZero() {
		return ctrl.Result{}
	}
	d := time.Until(s.next)
	if d < 100*time.Millisecond {
		// Sooner than this is a busy loop; the event that made it due is already past.
		d = 100 * time.Millisecond
	}
	return ctrl.Result{RequeueAfter: d}
}

func (s *step) emit(rec events.EventRecorder, obj runtime.Object) {
	if rec == nil {
		return
	}
	for _, e := range s.events {
		rec.Eventf(obj, nil, e.typ, e.reason, e.action, "%s", e.note)
	}
}

// setCondition sets a condition and reports whether its status or reason changed (a transition
// worth an event).
func setCondition(conds *[]metav1.Condition, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) bool {
	old := meta.FindStatusCondition(*conds, typ)
	changed := old == nil || old.Status != status || old.Reason != reason
	meta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen})
	return changed
}

// summarizeFrom sets Ready=False from the first of the given conditions that is not True (in the
// order given), or Reconciling when none is set yet.
func summarizeFrom(conds *[]metav1.Condition, gen int64, types ...string) {
	for _, t := range types {
		c := meta.FindStatusCondition(*conds, t)
		if c != nil && c.Status != metav1.ConditionTrue {
			setCondition(conds, gen, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, c.Reason, c.Message)
			return
		}
	}
	setCondition(conds, gen, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonReconciling, "in progress")
}

// checkDeadline sets DeadlineExceeded. A request finished late keeps DeadlineExceeded=True: it is
// a fact about the request an auditor must see.
func checkDeadline(st *privacyv1alpha1.RequestStatusCommon, gen int64, done bool, s *step) {
	if st.Deadline == nil {
		return
	}
	c := meta.FindStatusCondition(st.Conditions, privacyv1alpha1.ConditionDeadlineExceeded)
	if c != nil && c.Status == metav1.ConditionTrue {
		return
	}
	if !done && !s.now.Before(st.Deadline.Time) {
		msg := fmt.Sprintf("the deadline %s passed before the request completed", st.Deadline.UTC().Format(time.RFC3339))
		setCondition(&st.Conditions, gen, privacyv1alpha1.ConditionDeadlineExceeded, metav1.ConditionTrue, privacyv1alpha1.ReasonDeadlineExceeded, msg)
		s.warn(privacyv1alpha1.ReasonDeadlineExceeded, "Deadline", msg)
		return
	}
	setCondition(&st.Conditions, gen, privacyv1alpha1.ConditionDeadlineExceeded, metav1.ConditionFalse, privacyv1alpha1.ReasonWithinDeadline,
		"deadline "+st.Deadline.UTC().Format(time.RFC3339))
	if !done {
		s.at(st.Deadline.Time)
	}
}

func result(err error, pending bool) string {
	return metrics.Result(err, pending, connector.IsTransient)
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func joinNames(names []string) string {
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func describeLocations(locs []connector.LocationCount) string {
	if len(locs) == 0 {
		return "the store"
	}
	parts := make([]string, len(locs))
	for i, l := range locs {
		parts[i] = fmt.Sprintf("%s (%d)", l.Location, l.Records)
	}
	return strings.Join(parts, ", ")
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	return meta.FindStatusCondition(conds, typ)
}

// finish writes the status when it changed, with optimistic locking so that a reconcile working
// from a stale read cannot overwrite newer progress, then emits the step's events.
func (s *Shared) finish(ctx context.Context, obj, before client.Object, changed bool, st *step) (ctrl.Result, error) {
	if changed {
		if err := s.patchStatus(ctx, obj, before); err != nil {
			if apierrors.IsConflict(err) {
				// The next reconcile sees the newer status and repeats nothing harmful.
				return ctrl.Result{RequeueAfter: time.Second}, nil
			}
			return ctrl.Result{}, fmt.Errorf("patching status: %w", err)
		}
	}
	st.emit(s.Recorder, obj)
	return st.result(), nil
}

// patchStatus writes obj's status as a merge patch from before, failing with a conflict when the
// object changed since it was read.
func (s *Shared) patchStatus(ctx context.Context, obj, before client.Object) error {
	return s.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// accept resolves a request's subject and stores and sets its clock. It returns nil, nil when the
// request was refused: the status says why and the request is looked at again later.
func (s *Shared) accept(ctx context.Context, obj metav1.Object, common *privacyv1alpha1.RequestSpecCommon, status *privacyv1alpha1.RequestStatusCommon, st *step) (*requests.Acceptance, error) {
	receivedAt, deadline, _ := requests.Clock(obj, common)
	status.ReceivedAt = ptrTime(receivedAt)
	status.Deadline = ptrTime(deadline)
	acc, err := requests.Accept(ctx, s.Client, s.APIReader, s.Salt, obj, common)
	if err != nil {
		var rej *requests.Rejection
		if !errors.As(err, &rej) {
			return nil, err
		}
		status.Phase = privacyv1alpha1.PhasePending
		if setCondition(&status.Conditions, obj.GetGeneration(), privacyv1alpha1.ConditionAccepted, metav1.ConditionFalse, rej.Reason, rej.Message) {
			st.warn(rej.Reason, "Accept", rej.Message)
		}
		st.after(rejectedRetry)
		return nil, nil
	}
	status.SubjectDigest = acc.SubjectDigest
	return acc, nil
}

// readSubject reads an accepted request's identifiers again. A missing or invalid Secret is shown
// on cond and retried; a Secret whose contents changed since acceptance fails the request, since
// working for someone else under the same request would make its record a lie.
func (s *Shared) readSubject(ctx context.Context, obj metav1.Object, common *privacyv1alpha1.RequestSpecCommon, status *privacyv1alpha1.RequestStatusCommon, cond string, st *step) (connector.Identifiers, bool, error) {
	name := common.Subject.IdentifiersSecretRef.Name
	ids, err := subject.Read(ctx, s.APIReader, obj.GetNamespace(), name)
	if err != nil {
		var p *subject.Problem
		if !errors.As(err, &p) {
			return nil, false, err
		}
		if setCondition(&status.Conditions, obj.GetGeneration(), cond, metav1.ConditionFalse, p.Reason, "cannot read the subject: "+p.Message) {
			st.warn(p.Reason, "ReadSubject", p.Message)
		}
		st.after(rejectedRetry)
		return nil, false, nil
	}
	if subject.Digest(s.Salt, ids) != status.SubjectDigest {
		msg := fmt.Sprintf("identifiers Secret %q changed after the request was accepted; create a new request for a different subject", name)
		status.Phase = privacyv1alpha1.PhaseFailed
		setCondition(&status.Conditions, obj.GetGeneration(), privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonIdentifiersInvalid, msg)
		st.warn(privacyv1alpha1.ReasonIdentifiersInvalid, "ReadSubject", msg)
		return nil, false, nil
	}
	return ids, true, nil
}
