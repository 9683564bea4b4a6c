package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	fakeconnector "github.com/dsr-operator/dsr-operator/internal/connector/fake"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/subject"
	"github.com/dsr-operator/dsr-operator/internal/testbuilders"
)

// These tests drive the request logic with scripted store clients, a fake API client and a fake
// clock: no cluster, no database.

var (
	logicNow  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	logicSalt = []byte("salt")
	logicIDs  = map[string]string{"email": "jane@example.com"}
)

func logicScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := privacyv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// logicDeps is a reconciler's dependencies over a fake API client holding objs.
func logicDeps(t *testing.T, clk *clocktesting.FakePassiveClock, objs ...client.Object) *Dependencies {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(logicScheme(t)).WithObjects(objs...).
		WithStatusSubresource(&privacyv1alpha1.DeletionRequest{}, &privacyv1alpha1.AccessRequest{}).Build()
	return &Dependencies{Client: c, APIReader: c, Salt: logicSalt, StoreConcurrency: 4, Clock: clk}
}

func identifiersSecret(ns, name string) *corev1.Secret {
	data := map[string][]byte{}
	for k, v := range logicIDs {
		data[k] = []byte(v)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels: map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeIdentifiers}}, Data: data}
}

func logicDigest(t *testing.T) string {
	t.Helper()
	data := map[string][]byte{}
	for k, v := range logicIDs {
		data[k] = []byte(v)
	}
	ids, err := subject.FromSecretData("jane", data)
	if err != nil {
		t.Fatal(err)
	}
	return subject.Digest(logicSalt, ids)
}

// deletionScopeFor builds the scope of one reconcile of dr, whose stores use the scripted clients.
func deletionScopeFor(t *testing.T, deps *Dependencies, dr *privacyv1alpha1.DeletionRequest, clients map[string]*fakeconnector.Client) *deletionScope {
	t.Helper()
	s := &deletionScope{requestScope: newRequestScope(context.Background(), deps, dr, &dr.Spec.RequestSpecCommon, &dr.Status.RequestStatusCommon), request: dr}
	s.identifiers = connector.Identifiers{"email": logicIDs["email"]}
	s.clientOverride = func(_ privacyv1alpha1.StoreKind, name string) (connector.Client, error) {
		cl, ok := clients[name]
		if !ok {
			return nil, fmt.Errorf("no client for %s", name)
		}
		return cl, nil
	}
	return s
}

// A store that flapped while planning starts its next step with a fresh count of attempts.
func TestAttemptsResetWhenStepChanges(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(logicNow)
	deps := logicDeps(t, clk)
	r := &DeletionRequestReconciler{Dependencies: *deps}
	dr := erasingWithOneStore("flap", privacyv1alpha1.StorePending, nil)
	down := fakeconnector.Result{Err: fakeconnector.Unavailable("erase")}
	cl := fakeconnector.NewClient().
		On(fakeconnector.OpPlan, down, down, down, fakeconnector.Result{Erase: &connector.EraseResult{Erased: 1}}).
		On(fakeconnector.OpErase, fakeconnector.Result{Erase: &connector.EraseResult{Erased: 1}}).
		On(fakeconnector.OpVerify, fakeconnector.Result{Verify: &connector.VerifyResult{Remaining: 1}})

	st := &dr.Status.Stores[0]
	for i := range 4 {
		s := deletionScopeFor(t, deps, dr, map[string]*fakeconnector.Client{"db": cl})
		if _, err := r.workOnDueStores(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if i < 3 && (st.Phase != privacyv1alpha1.StoreRetrying || st.Attempts != int32(i+1)) {
			t.Fatalf("after failure %d: phase %s, attempts %d", i+1, st.Phase, st.Attempts)
		}
		clk.SetTime(clk.Now().Add(time.Hour))
	}
	if st.Planned == nil || st.Phase != privacyv1alpha1.StoreErasing || st.Attempts != 0 {
		t.Fatalf("after planning: phase %s, attempts %d, planned %v", st.Phase, st.Attempts, st.Planned)
	}
	s := deletionScopeFor(t, deps, dr, map[string]*fakeconnector.Client{"db": cl})
	if _, err := r.workOnDueStores(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if st.Phase != privacyv1alpha1.StoreErased || st.Attempts != 1 {
		t.Fatalf("verification with records left: phase %s, attempts %d (the planning failures counted)", st.Phase, st.Attempts)
	}
	if wait := st.NextAttemptAt.Sub(clk.Now()); wait > 2*requests.BaseBackoff {
		t.Errorf("first verification retry in %s, want about %s", wait, requests.BaseBackoff)
	}
}

// Re-verification collects each store's outcome separately and aggregates after the fan-out: many
// stores at once, some reappearing, some failing, give exact counts (and `go test -race` is clean).
func TestReverificationAggregatesPerStore(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(logicNow)
	dr := testbuilders.DeletionRequest("ns", "watch", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{ReErase: true}
	})
	deps := logicDeps(t, clk, identifiersSecret("ns", "jane"))
	r := &DeletionRequestReconciler{Dependencies: *deps}
	dr.Status.Phase = privacyv1alpha1.PhaseCompleted
	dr.Status.SubjectDigest = logicDigest(t)
	dr.Status.Verification = &privacyv1alpha1.VerificationStatus{Verifications: 1, NextVerificationAt: ptrTime(logicNow),
		VerifyUntil: ptrTime(logicNow.Add(time.Hour))}
	clients := map[string]*fakeconnector.Client{}
	const n = 60
	for i := range n {
		name := fmt.Sprintf("store-%02d", i)
		dr.Status.Stores = append(dr.Status.Stores, testbuilders.DeletionStore(name, privacyv1alpha1.StoreVerified))
		cl := fakeconnector.NewClient()
		switch i % 3 {
		case 0: // came back, erased again
			cl.On(fakeconnector.OpVerify, fakeconnector.Result{Verify: &connector.VerifyResult{Remaining: 2}}, fakeconnector.Result{})
		case 1: // unreachable
			cl.On(fakeconnector.OpVerify, fakeconnector.Result{Err: fakeconnector.Unavailable("verify")})
		}
		clients[name] = cl
	}
	s := deletionScopeFor(t, deps, dr, clients)
	if _, err := r.reverifyWhenDue(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	o := s.reverification
	if len(o.reappeared) != n/3 || len(o.reErased) != n/3 || o.failures != n/3 {
		t.Fatalf("reappeared %d, re-erased %d, failures %d; want %d each", len(o.reappeared), len(o.reErased), o.failures, n/3)
	}
	if dr.Status.Verification.Reappearances != 1 || dr.Status.Verification.Verifications != 2 {
		t.Errorf("verification %+v", dr.Status.Verification)
	}
	for i, st := range dr.Status.Stores {
		if i%3 == 1 && (st.Phase != privacyv1alpha1.StoreVerified || st.Attempts != 1) {
			t.Errorf("%s: an unreachable store keeps its phase and counts the attempt: %s, %d", st.Name, st.Phase, st.Attempts)
		}
		if i%3 == 0 && st.ReErasures != 1 {
			t.Errorf("%s: re-erasures %d", st.Name, st.ReErasures)
		}
	}
}

// A regulation without a deadline rule is refused with its own reason; no deadline is invented.
func TestUnknownRegulationIsRefused(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(logicNow)
	deps := logicDeps(t, clk)
	dr := testbuilders.DeletionRequest("ns", "atlantis", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Regulation = "Atlantis"
		dr.CreationTimestamp = metav1.NewTime(logicNow)
	})
	s := deletionScopeFor(t, deps, dr, nil)
	if proceed, err := (&DeletionRequestReconciler{Dependencies: *deps}).acceptRequest(context.Background(), s); proceed || err != nil {
		t.Fatalf("accepted: %v, %v", proceed, err)
	}
	deriveDeletionStatus(dr, &s.facts, nil, s.effect)
	if dr.Status.Deadline != nil {
		t.Errorf("deadline %v for a regulation without a rule", dr.Status.Deadline)
	}
	for _, typ := range []string{privacyv1alpha1.ConditionAccepted, privacyv1alpha1.ConditionReady} {
		if c := meta.FindStatusCondition(dr.Status.Conditions, typ); c == nil || c.Reason != privacyv1alpha1.ReasonRegulationUnknown {
			t.Errorf("%s: %+v", typ, c)
		}
	}
	if meta.FindStatusCondition(dr.Status.Conditions, privacyv1alpha1.ConditionDeadlineExceeded) != nil {
		t.Error("DeadlineExceeded set")
	}
	if !hasEvent(s.effect, corev1.EventTypeWarning, privacyv1alpha1.ReasonRegulationUnknown) {
		t.Errorf("no Warning event: %+v", s.effect.events)
	}
}

// An unfinished request is looked at again within the safety net, even when every store backs off
// for longer and nothing else is due.
func TestUnfinishedRequestIsRevisitedWithinTheSafetyNet(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(logicNow)
	dr := testbuilders.DeletionRequest("ns", "slow", "jane")
	dr.Generation = 1
	deps := logicDeps(t, clk, dr, identifiersSecret("ns", "jane"))
	if err := deps.Get(context.Background(), client.ObjectKeyFromObject(dr), dr); err != nil {
		t.Fatal(err)
	}
	st := testbuilders.DeletionStore("db", privacyv1alpha1.StoreFailed)
	st.NextAttemptAt = ptrTime(logicNow.Add(time.Hour))
	dr.Status.Phase = privacyv1alpha1.PhaseErasing
	dr.Status.SubjectDigest = logicDigest(t)
	dr.Status.Stores = []privacyv1alpha1.DeletionStoreStatus{st}
	if err := deps.Status().Update(context.Background(), dr); err != nil {
		t.Fatal(err)
	}
	r := &DeletionRequestReconciler{Dependencies: *deps}
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(dr)})
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > safetyNetInterval {
		t.Errorf("requeue after %s, want at most %s", res.RequeueAfter, safetyNetInterval)
	}
}

func hasEvent(e *effects, typ, reason string) bool {
	for _, ev := range e.events {
		if ev.typ == typ && ev.reason == reason {
			return true
		}
	}
	return false
}

// Records a verification finds left right after the erasure (written meanwhile, or under a spelling
// the plan had not seen) are erased by the next attempt, under an ID of its own, and counted on top
// of the plan; records that an erasure cannot change are retried ever more slowly.
func TestRecordsLeftAfterErasureAreErasedAgain(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(logicNow)
	deps := logicDeps(t, clk)
	r := &DeletionRequestReconciler{Dependencies: *deps}
	dr := erasingWithOneStore("late", privacyv1alpha1.StoreErasing, &privacyv1alpha1.EraseCounts{Erased: 3})
	dr.UID = "uid-late"
	st := &dr.Status.Stores[0]
	cl := fakeconnector.NewClient().
		On(fakeconnector.OpErase, fakeconnector.Result{Erase: &connector.EraseResult{Erased: 3}}, fakeconnector.Result{Erase: &connector.EraseResult{Erased: 1}}).
		On(fakeconnector.OpVerify, fakeconnector.Result{Verify: &connector.VerifyResult{Remaining: 1}}, fakeconnector.Result{})
	attempt := func() {
		t.Helper()
		s := deletionScopeFor(t, deps, dr, map[string]*fakeconnector.Client{"db": cl})
		if _, err := r.workOnDueStores(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		clk.SetTime(clk.Now().Add(time.Hour))
	}
	attempt()
	if st.Phase != privacyv1alpha1.StoreErased || st.Remaining != 1 || st.Erased != 3 {
		t.Fatalf("after the erasure: phase %s, remaining %d, erased %d", st.Phase, st.Remaining, st.Erased)
	}
	attempt()
	if n := cl.Calls(fakeconnector.OpErase); n != 2 {
		t.Fatalf("the records left were not erased again: %d erasures", n)
	}
	if st.Phase != privacyv1alpha1.StoreVerified || st.Remaining != 0 || st.Erased != 4 {
		t.Fatalf("after erasing what was left: phase %s, remaining %d, erased %d; want Verified, 0, 4", st.Phase, st.Remaining, st.Erased)
	}
	if ids := cl.IDs(fakeconnector.OpErase); ids[0] != "uid-late" || ids[1] != "uid-late/left/1" {
		t.Errorf("erasure IDs %q: the second must be its own", ids)
	}

	// A store that keeps reporting what it cannot erase backs off longer each time.
	stuck := erasingWithOneStore("stuck", privacyv1alpha1.StoreErasing, &privacyv1alpha1.EraseCounts{Erased: 1})
	always := fakeconnector.NewClient().
		On(fakeconnector.OpErase, fakeconnector.Result{Erase: &connector.EraseResult{Erased: 1}}, fakeconnector.Result{}, fakeconnector.Result{}, fakeconnector.Result{}).
		On(fakeconnector.OpVerify, fakeconnector.Result{Verify: &connector.VerifyResult{Remaining: 2}})
	var waits []time.Duration
	for range 4 {
		s := deletionScopeFor(t, deps, stuck, map[string]*fakeconnector.Client{"db": always})
		if _, err := r.workOnDueStores(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		ss := &stuck.Status.Stores[0]
		if ss.Phase != privacyv1alpha1.StoreErased || ss.Remaining != 2 || ss.Erased != 1 {
			t.Fatalf("phase %s, remaining %d, erased %d", ss.Phase, ss.Remaining, ss.Erased)
		}
		waits = append(waits, ss.NextAttemptAt.Sub(clk.Now()))
		clk.SetTime(ss.NextAttemptAt.Time)
	}
	if stuck.Status.Stores[0].Attempts != 4 || waits[3] <= waits[0] {
		t.Errorf("attempts %d, waits %v: want 4 attempts and a growing wait", stuck.Status.Stores[0].Attempts, waits)
	}
}

// erasingWithOneStore is an accepted deletion whose one store, db, is in phase (with its plan).
func erasingWithOneStore(name string, phase privacyv1alpha1.StorePhase, planned *privacyv1alpha1.EraseCounts) *privacyv1alpha1.DeletionRequest {
	dr := testbuilders.DeletionRequest("ns", name, "jane")
	dr.Status.Phase = privacyv1alpha1.PhaseErasing
	dr.Status.Stores = []privacyv1alpha1.DeletionStoreStatus{testbuilders.DeletionStore("db", phase)}
	dr.Status.Stores[0].Planned = planned
	return dr
}
