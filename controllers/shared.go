// Package controllers holds one reconciler per kind: DataStore, ClusterDataStore, DeletionRequest
// and AccessRequest.
package controllers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/metrics"
	"github.com/dsr-operator/dsr-operator/internal/stores"
)

// Dependencies is what every reconciler of the operator is given.
type Dependencies struct {
	client.Client
	// APIReader reads Secrets directly: the operator never caches Secrets cluster-wide.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Pool      *stores.Pool
	// Salt is the installation's salt for subject digests.
	Salt []byte
	// StoreConcurrency bounds how many stores one request works on at once.
	StoreConcurrency int
	// Clock tells the time; nil is the real clock (tests set a fake one).
	Clock clock.PassiveClock
}

func (d *Dependencies) now() time.Time {
	if d.Clock != nil {
		return d.Clock.Now()
	}
	return time.Now()
}

// Scheme is the manager's scheme, for owner references.
func (d *Dependencies) Scheme() *runtime.Scheme { return d.Client.Scheme() }

// effects gathers what one reconcile decided beyond the status: events to emit once the status is
// written (so that a conflicting write does not repeat them) and when to look again.
type effects struct {
	now    time.Time
	events []pendingEvent
	next   time.Time
}

type pendingEvent struct{ typ, reason, action, note string }

func (e *effects) normal(reason, action, note string) {
	e.events = append(e.events, pendingEvent{corev1.EventTypeNormal, reason, action, note})
}

func (e *effects) warn(reason, action, note string) {
	e.events = append(e.events, pendingEvent{corev1.EventTypeWarning, reason, action, note})
}

// at asks for a reconcile no later than t.
func (e *effects) at(t time.Time) {
	if e.next.IsZero() || t.Before(e.next) {
		e.next = t
	}
}

func (e *effects) after(d time.Duration) { e.at(e.now.Add(d)) }

func (e *effects) result() ctrl.Result {
	if e.next.IsZero() {
		return ctrl.Result{}
	}
	d := e.next.Sub(e.now)
	if d < 100*time.Millisecond {
		// Sooner than this is a busy loop; the event that made it due is already past.
		d = 100 * time.Millisecond
	}
	return ctrl.Result{RequeueAfter: d}
}

// emit sends the gathered events and forgets them, so that a later write does not send them again.
func (e *effects) emit(rec events.EventRecorder, obj runtime.Object) {
	if rec != nil {
		for _, ev := range e.events {
			rec.Eventf(obj, nil, ev.typ, ev.reason, ev.action, "%s", ev.note)
		}
	}
	e.events = nil
}

// setCondition sets a condition and reports whether its status or reason changed (a transition
// worth an event).
func setCondition(conds *[]metav1.Condition, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) bool {
	old := meta.FindStatusCondition(*conds, typ)
	changed := old == nil || old.Status != status || old.Reason != reason
	meta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen})
	return changed
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
