package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/metrics"
	"github.com/dsr-operator/dsr-operator/internal/secretref"
	"github.com/dsr-operator/dsr-operator/internal/stores"
)

const (
	defaultCheckInterval = 5 * time.Minute
	// failedCheckRetry bounds how long a broken store waits for its next check.
	failedCheckRetry = time.Minute
	// DefaultSecretPollInterval bounds how long a rotated store Secret goes unnoticed. Secrets are
	// not watched (the operator may not list or watch them): every store looks at the
	// resourceVersions of its Secrets this often and is checked again when one changed.
	DefaultSecretPollInterval = time.Minute
)

// genericStore is what the store reconciler needs of a DataStore or a ClusterDataStore: they share
// one spec and one status, and differ in scope and in who may use them.
type genericStore interface {
	// object is the DataStore or ClusterDataStore itself, for the API calls and events.
	object() client.Object
	ref() stores.Ref
	storeSpec() *privacyv1alpha1.DataStoreSpec
	storeStatus() *privacyv1alpha1.DataStoreStatus
	// namespaceSelector is the namespaces a ClusterDataStore admits; nil for a DataStore.
	namespaceSelector() *metav1.LabelSelector
	// copyStore returns a deep copy, the base of the status patch.
	copyStore() genericStore
}

type dataStore struct{ *privacyv1alpha1.DataStore }

func (s dataStore) object() client.Object { return s.DataStore }

func (s dataStore) ref() stores.Ref {
	return stores.Ref{Kind: privacyv1alpha1.KindDataStore, Namespace: s.Namespace, Name: s.Name}
}
func (s dataStore) storeSpec() *privacyv1alpha1.DataStoreSpec     { return &s.Spec }
func (s dataStore) storeStatus() *privacyv1alpha1.DataStoreStatus { return &s.Status }
func (s dataStore) namespaceSelector() *metav1.LabelSelector      { return nil }
func (s dataStore) copyStore() genericStore                       { return dataStore{s.DeepCopy()} }

type clusterDataStore struct {
	*privacyv1alpha1.ClusterDataStore
}

func (s clusterDataStore) object() client.Object { return s.ClusterDataStore }

func (s clusterDataStore) ref() stores.Ref {
	return stores.Ref{Kind: privacyv1alpha1.KindClusterDataStore, Name: s.Name}
}
func (s clusterDataStore) storeSpec() *privacyv1alpha1.DataStoreSpec {
	return &s.Spec.DataStoreSpec
}
func (s clusterDataStore) storeStatus() *privacyv1alpha1.DataStoreStatus { return &s.Status }
func (s clusterDataStore) namespaceSelector() *metav1.LabelSelector {
	return s.Spec.NamespaceSelector
}
func (s clusterDataStore) copyStore() genericStore { return clusterDataStore{s.DeepCopy()} }

// storeReconciler checks that a store is usable and reports it on Ready, for both store kinds.
type storeReconciler struct {
	*Dependencies
	// secretPoll is how often a store looks for a rotated Secret (DefaultSecretPollInterval when 0).
	secretPoll time.Duration
	// checked remembers, per store, the versions of its Secrets at its last check.
	checked *secretVersions
}

// reconcile reads the store named by req into obj, checks it when due and writes its status.
func (r storeReconciler) reconcile(ctx context.Context, req ctrl.Request, obj genericStore) (ctrl.Result, error) {
	if err := r.Get(ctx, req.NamespacedName, obj.object()); err != nil {
		if apierrors.IsNotFound(err) {
			// obj holds only the request's key: enough for its ref.
			obj.object().SetNamespace(req.Namespace)
			obj.object().SetName(req.Name)
			r.Pool.Forget(obj.ref())
			r.checked.forget(obj.ref())
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.copyStore()
	status, gen, now := obj.storeStatus(), obj.object().GetGeneration(), r.now()
	if sel := obj.namespaceSelector(); sel != nil {
		if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
			setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonMappingInvalid,
				"invalid namespaceSelector: "+err.Error())
			status.ObservedGeneration = gen
			return ctrl.Result{}, patchStoreStatus(ctx, r.Client, obj.object(), before.object(), true)
		}
	}
	interval := checkInterval(obj.storeSpec())
	secrets, secretsKnown := r.secretVersions(ctx, obj)
	if next := nextCheck(status, gen, interval); !next.IsZero() && now.Before(next) && secretsKnown && r.checked.same(obj.ref(), secrets) {
		return ctrl.Result{RequeueAfter: min(next.Sub(now), r.pollInterval())}, nil
	}
	check := r.check(ctx, obj, now)
	if secretsKnown {
		r.checked.record(obj.ref(), secrets)
	} else {
		r.checked.forget(obj.ref())
	}
	if err := patchStoreStatus(ctx, r.Client, obj.object(), before.object(), !equality.Semantic.DeepEqual(before.storeStatus(), status)); err != nil {
		return ctrl.Result{}, err
	}
	if check.event != nil && r.Recorder != nil {
		r.Recorder.Eventf(obj.object(), nil, check.event.typ, check.event.reason, "Check", "%s", check.event.note)
	}
	return ctrl.Result{RequeueAfter: min(check.retryAfter, r.pollInterval())}, nil
}

func (r storeReconciler) pollInterval() time.Duration {
	if r.secretPoll > 0 {
		return r.secretPoll
	}
	return DefaultSecretPollInterval
}

// storeCheck is what one check decided beyond the status.
type storeCheck struct {
	// event reports a change of Ready, emitted once the status is written.
	event      *storeEvent
	retryAfter time.Duration
}

type storeEvent struct{ typ, reason, note string }

// check connects to the store with fresh credentials, runs the connector's Check and sets the
// status from the outcome.
func (r storeReconciler) check(ctx context.Context, obj genericStore, now time.Time) storeCheck {
	spec, status, gen := obj.storeSpec(), obj.storeStatus(), obj.object().GetGeneration()
	interval := checkInterval(spec)
	status.ObservedGeneration = gen
	status.LastCheckTime = ptrTime(now)

	reason, msg := privacyv1alpha1.ReasonReady, "connection and mapping checked"
	var warnings []string
	store := &stores.Store{Ref: obj.ref(), Spec: spec, Generation: gen, UID: obj.object().GetUID()}
	lease, err := r.Pool.Acquire(ctx, store, true)
	if err == nil {
		var res *connector.CheckResult
		res, err = lease.Client().Check(ctx)
		lease.Release()
		if err == nil {
			warnings = res.Warnings
		}
	}
	metrics.StoreOperations.WithLabelValues(string(spec.Type), "check", result(err, false)).Inc()
	if err != nil {
		reason, msg = checkFailure(err)
	}
	status.Warnings = warnings
	if len(warnings) > 0 && err == nil {
		msg = fmt.Sprintf("%s; %d warnings: %s", msg, len(warnings), strings.Join(warnings, "; "))
	}
	out := storeCheck{retryAfter: interval}
	cs, eventType := metav1.ConditionTrue, corev1.EventTypeNormal
	if err != nil {
		cs, eventType = metav1.ConditionFalse, corev1.EventTypeWarning
		out.retryAfter = min(interval, failedCheckRetry)
	}
	if setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionReady, cs, reason, msg) {
		out.event = &storeEvent{typ: eventType, reason: reason, note: msg}
	}
	return out
}

func checkInterval(spec *privacyv1alpha1.DataStoreSpec) time.Duration {
	if spec.CheckInterval != nil && spec.CheckInterval.Duration > 0 {
		return spec.CheckInterval.Duration
	}
	return defaultCheckInterval
}

// nextCheck is when the store's last check is due again: its interval after a good check, at most
// failedCheckRetry after a failed one. Zero means now: the spec changed or it was never checked.
func nextCheck(status *privacyv1alpha1.DataStoreStatus, gen int64, interval time.Duration) time.Time {
	ready := meta.FindStatusCondition(status.Conditions, privacyv1alpha1.ConditionReady)
	if status.ObservedGeneration != gen || status.LastCheckTime == nil || ready == nil || ready.ObservedGeneration != gen {
		return time.Time{}
	}
	if ready.Status != metav1.ConditionTrue {
		interval = min(interval, failedCheckRetry)
	}
	return status.LastCheckTime.Add(interval)
}

// checkFailure maps a store error to the Ready reason the store's owner acts on.
func checkFailure(err error) (reason, msg string) {
	if secretref.IsNotOptedIn(err) {
		return privacyv1alpha1.ReasonSecretNotOptedIn, err.Error()
	}
	if stores.IsSecretError(err) {
		return privacyv1alpha1.ReasonSecretNotFound, err.Error()
	}
	// Only the kind, code and location: driver text may name hosts, users or databases.
	msg = connector.Summary(err)
	if len(msg) > 1024 {
		msg = msg[:1021] + "..."
	}
	var ce *connector.Error
	if errors.As(err, &ce) && ce.Kind == connector.KindMapping {
		return privacyv1alpha1.ReasonMappingInvalid, msg
	}
	if connector.KindOf(err) == connector.KindEgressDenied {
		return privacyv1alpha1.ReasonEgressDenied, msg
	}
	return privacyv1alpha1.ReasonConnectionFailed, msg
}

func patchStoreStatus(ctx context.Context, c client.Client, obj client.Object, before client.Object, changed bool) error {
	if !changed {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		return client.IgnoreNotFound(err)
	}
	return nil
}

// storeSecretNames lists the Secrets a store spec references.
func storeSecretNames(spec *privacyv1alpha1.DataStoreSpec) []string {
	var names []string
	if ref := spec.Connection.SecretRef; ref != nil {
		names = append(names, ref.Name)
	}
	if ref := spec.Connection.CASecretRef; ref != nil && (len(names) == 0 || names[0] != ref.Name) {
		names = append(names, ref.Name)
	}
	return names
}

// secretVersions reads the metadata of the store's Secrets (never their data) and returns their
// names and resourceVersions, "-" for a missing one. ok is false when one could not be read.
func (r storeReconciler) secretVersions(ctx context.Context, obj genericStore) (versions string, ok bool) {
	ns := r.Pool.SecretNamespace(obj.ref())
	var b strings.Builder
	for _, name := range storeSecretNames(obj.storeSpec()) {
		var m metav1.PartialObjectMetadata
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		rv := "-"
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &m); err == nil {
			rv = m.ResourceVersion
		} else if !apierrors.IsNotFound(err) {
			return "", false
		}
		fmt.Fprintf(&b, "%s=%s;", name, rv)
	}
	return b.String(), true
}

// secretVersions remembers the Secret versions each store was last checked with.
type secretVersions struct {
	mu       sync.Mutex
	versions map[stores.Ref]string
}

func (v *secretVersions) same(ref stores.Ref, versions string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	last, ok := v.versions[ref]
	return ok && last == versions
}

func (v *secretVersions) record(ref stores.Ref, versions string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.versions == nil {
		v.versions = map[stores.Ref]string{}
	}
	v.versions[ref] = versions
}

func (v *secretVersions) forget(ref stores.Ref) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.versions, ref)
}
