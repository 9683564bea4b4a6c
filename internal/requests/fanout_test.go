package requests_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	fakeconnector "github.com/dsr-operator/dsr-operator/internal/connector/fake"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestFanOutOutcome(t *testing.T) {
	later := metav1.NewTime(now.Add(time.Minute))
	cases := []struct {
		name         string
		progress     privacyv1alpha1.StoreProgress
		keepPhase    bool
		clientErr    error
		opErr        error
		wantRan      bool
		wantPhase    privacyv1alpha1.StorePhase
		wantAttempts int32
		wantNewly    bool
		wantReason   string
	}{
		{name: "success", progress: privacyv1alpha1.StoreProgress{Phase: privacyv1alpha1.StoreErasing},
			wantRan: true, wantPhase: privacyv1alpha1.StoreErasing},
		{name: "transient failure", progress: privacyv1alpha1.StoreProgress{Phase: privacyv1alpha1.StoreErasing},
			opErr: fakeconnector.Unavailable("erase"), wantRan: true, wantPhase: privacyv1alpha1.StoreRetrying, wantAttempts: 1,
			wantNewly: true, wantReason: privacyv1alpha1.ReasonStoreUnavailable},
		{name: "retrying again is no news", progress: privacyv1alpha1.StoreProgress{Phase: privacyv1alpha1.StoreRetrying, Attempts: 2},
			opErr: fakeconnector.Unavailable("erase"), wantRan: true, wantPhase: privacyv1alpha1.StoreRetrying, wantAttempts: 3,
			wantReason: privacyv1alpha1.ReasonStoreUnavailable},
		{name: "permanent failure", progress: privacyv1alpha1.StoreProgress{Phase: privacyv1alpha1.StoreErasing},
			opErr: fakeconnector.Failed("erase"), wantRan: true, wantPhase: privacyv1alpha1.StoreFailed, wantAttempts: 1,
			wantNewly: true, wantReason: privacyv1alpha1.ReasonStoreFailed},
		{name: "no client", progress: privacyv1alpha1.StoreProgress{Phase: privacyv1alpha1.StorePending},
			clientErr: connector.Errorf(connector.KindUnavailable, "connect", "refused"), wantRan: true,
			wantPhase: privacyv1alpha1.StoreRetrying, wantAttempts: 1, wantNewly: true, wantReason: privacyv1alpha1.ReasonStoreUnavailable},
		{name: "re-verification keeps the phase", progress: privacyv1alpha1.StoreProgress{Phase: privacyv1alpha1.StoreVerified},
			keepPhase: true, opErr: fakeconnector.Unavailable("verify"), wantRan: true, wantPhase: privacyv1alpha1.StoreVerified,
			wantAttempts: 1, wantReason: privacyv1alpha1.ReasonStoreUnavailable},
		{name: "backing off is not due", progress: privacyv1alpha1.StoreProgress{Phase: privacyv1alpha1.StoreRetrying, Attempts: 1, NextAttemptAt: &later},
			wantPhase: privacyv1alpha1.StoreRetrying, wantAttempts: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.progress
			fan := requests.FanOut{Now: now, KeepPhaseOnFailure: tc.keepPhase, Client: func(context.Context, int) (connector.Client, func(), error) {
				return fakeconnector.NewClient(), nil, tc.clientErr
			}}
			res := requests.Run(context.Background(), fan, []*privacyv1alpha1.StoreProgress{&p},
				func(int) bool { return !requests.IsBackingOff(&p, now) },
				func(context.Context, int, connector.Client) (int, error) { return 7, tc.opErr })[0]
			if res.Ran != tc.wantRan || p.Phase != tc.wantPhase || p.Attempts != tc.wantAttempts || res.NewlyFailing != tc.wantNewly {
				t.Fatalf("ran %v phase %s attempts %d newly %v", res.Ran, p.Phase, p.Attempts, res.NewlyFailing)
			}
			if tc.wantReason == "" {
				if res.Failure != nil {
					t.Fatalf("failure %+v", res.Failure)
				}
				if tc.wantRan && res.Value != 7 {
					t.Errorf("value %d", res.Value)
				}
				return
			}
			if res.Failure == nil || res.Failure.Reason != tc.wantReason {
				t.Fatalf("failure %+v, want %s", res.Failure, tc.wantReason)
			}
			if p.NextAttemptAt == nil || !p.NextAttemptAt.After(now) || p.Message == "" {
				t.Errorf("next attempt %v, message %q", p.NextAttemptAt, p.Message)
			}
		})
	}
}

// The fan-out never runs more than Limit operations at once, and runs every due store.
func TestFanOutIsBounded(t *testing.T) {
	const n, limit = 40, 3
	progress := make([]*privacyv1alpha1.StoreProgress, n)
	for i := range progress {
		progress[i] = &privacyv1alpha1.StoreProgress{Phase: privacyv1alpha1.StorePending}
	}
	var running, peak atomic.Int32
	fan := requests.FanOut{Now: now, Limit: limit, Client: func(context.Context, int) (connector.Client, func(), error) {
		return fakeconnector.NewClient(), nil, nil
	}}
	results := requests.Run(context.Background(), fan, progress, func(i int) bool { return i%2 == 0 },
		func(_ context.Context, i int, _ connector.Client) (int, error) {
			cur := running.Add(1)
			for {
				old := peak.Load()
				if cur <= old || peak.CompareAndSwap(old, cur) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			if i%4 == 0 {
				return i, errors.New("odd store")
			}
			return i, nil
		})
	if p := peak.Load(); p > limit {
		t.Errorf("%d at once, limit %d", p, limit)
	}
	for i, r := range results {
		if r.Ran != (i%2 == 0) {
			t.Errorf("store %d ran %v", i, r.Ran)
		}
		if r.Ran && r.Value != i {
			t.Errorf("store %d got the result of %d", i, r.Value)
		}
		if (r.Failure != nil) != (r.Ran && i%4 == 0) {
			t.Errorf("store %d failure %+v", i, r.Failure)
		}
	}
}

func TestEnterStepResetsAttempts(t *testing.T) {
	later := metav1.NewTime(now.Add(time.Hour))
	p := privacyv1alpha1.StoreProgress{Phase: privacyv1alpha1.StoreRetrying, Attempts: 6, NextAttemptAt: &later, Message: "down"}
	requests.EnterStep(&p, privacyv1alpha1.StoreErasing)
	if p.Phase != privacyv1alpha1.StoreErasing || p.Attempts != 0 || p.NextAttemptAt != nil || p.Message != "" {
		t.Errorf("%+v", p)
	}
}
