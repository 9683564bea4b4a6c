package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

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
	// secretIndex indexes stores by the Secrets they reference.
	secretIndex = ".spec.connection.secretNames"
)

// DataStoreReconciler checks that a namespaced DataStore is usable and reports it as Ready.
type DataStoreReconciler struct{ Shared }

// ClusterDataStoreReconciler does the same for ClusterDataStores, whose Secrets live in the
// operator's namespace.
type ClusterDataStoreReconciler struct {
	Shared
	OperatorNamespace string
}

// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=datastores;clusterdatastores,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=datastores/status;clusterdatastores/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile checks one DataStore.
func (r *DataStoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ref := stores.Ref{Kind: privacyv1alpha1.KindDataStore, Namespace: req.Namespace, Name: req.Name}
	var ds privacyv1alpha1.DataStore
	if err := r.Get(ctx, req.NamespacedName, &ds); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.Pool.Forget(ref)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := ds.DeepCopy()
	store := &stores.Store{Ref: ref, Spec: &ds.Spec, Generation: ds.Generation, UID: ds.UID}
	st := &step{now: r.now()}
	checkStore(ctx, &r.Shared, store, &ds.Status, ds.Generation, st)
	if err := patchStoreStatus(ctx, r.Client, &ds, before, !equality.Semantic.DeepEqual(before.Status, ds.Status)); err != nil {
		return ctrl.Result{}, err
	}
	st.emit(r.Recorder, &ds)
	return st.result(), nil
}

// Reconcile checks one ClusterDataStore.
func (r *ClusterDataStoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ref := stores.Ref{Kind: privacyv1alpha1.KindClusterDataStore, Name: req.Name}
	var cds privacyv1alpha1.ClusterDataStore
	if err := r.Get(ctx, req.NamespacedName, &cds); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.Pool.Forget(ref)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := cds.DeepCopy()
	st := &step{now: r.now()}
	if cds.Spec.NamespaceSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(cds.Spec.NamespaceSelector); err != nil {
			setCondition(&cds.Status.Conditions, cds.Generation, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonMappingInvalid,
				"invalid namespaceSelector: "+err.Error())
			cds.Status.ObservedGeneration = cds.Generation
			return ctrl.Result{}, patchStoreStatus(ctx, r.Client, &cds, before, true)
		}
	}
	store := &stores.Store{Ref: ref, Spec: &cds.Spec.DataStoreSpec, Generation: cds.Generation, UID: cds.UID}
	checkStore(ctx, &r.Shared, store, &cds.Status, cds.Generation, st)
	if err := patchStoreStatus(ctx, r.Client, &cds, before, !equality.Semantic.DeepEqual(before.Status, cds.Status)); err != nil {
		return ctrl.Result{}, err
	}
	st.emit(r.Recorder, &cds)
	return st.result(), nil
}

// checkStore connects to the store with fresh credentials and runs the connector's Check.
func checkStore(ctx context.Context, sh *Shared, store *stores.Store, status *privacyv1alpha1.DataStoreStatus, gen int64, st *step) {
	interval := defaultCheckInterval
	if store.Spec.CheckInterval != nil && store.Spec.CheckInterval.Duration > 0 {
		interval = store.Spec.CheckInterval.Duration
	}
	status.ObservedGeneration = gen
	status.LastCheckTime = ptrTime(st.now)

	reason, msg := privacyv1alpha1.ReasonReady, "connection and mapping checked"
	var warnings []string
	cl, err := sh.Pool.Client(ctx, store, true)
	if err == nil {
		var res *connector.CheckResult
		res, err = cl.Check(ctx)
		if err == nil {
			warnings = res.Warnings
		}
	}
	metrics.StoreOperations.WithLabelValues(string(store.Spec.Type), "check", result(err, false)).Inc()
	if err != nil {
		reason, msg = checkFailure(err)
	}
	status.Warnings = warnings
	if len(warnings) > 0 && err == nil {
		msg = fmt.Sprintf("%s; %d warnings: %s", msg, len(warnings), strings.Join(warnings, "; "))
	}
	cs := metav1.ConditionTrue
	if err != nil {
		cs = metav1.ConditionFalse
		st.after(min(interval, failedCheckRetry))
	} else {
		st.after(interval)
	}
	if setCondition(&status.Conditions, gen, privacyv1alpha1.ConditionReady, cs, reason, msg) {
		if cs == metav1.ConditionTrue {
			st.normal(reason, "Check", msg)
		} else {
			st.warn(reason, "Check", msg)
		}
	}
}

// checkFailure maps a store error to the Ready reason the store's owner acts on.
func checkFailure(err error) (reason, msg string) {
	msg = err.Error()
	if len(msg) > 1024 {
		msg = msg[:1021] + "..."
	}
	if secretref.IsNotOptedIn(err) {
		return privacyv1alpha1.ReasonSecretNotOptedIn, msg
	}
	if stores.IsSecretError(err) {
		return privacyv1alpha1.ReasonSecretNotFound, msg
	}
	var ce *connector.Error
	if errors.As(err, &ce) && ce.Kind == connector.KindMapping {
		return privacyv1alpha1.ReasonMappingInvalid, msg
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

// storeSecretNames indexes the Secrets a store spec references.
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

// SetupWithManager registers the reconciler. Secrets are watched as metadata only: a changed
// password triggers a check without the operator caching any Secret's data.
func (r *DataStoreReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &privacyv1alpha1.DataStore{}, secretIndex, func(o client.Object) []string {
		return storeSecretNames(&o.(*privacyv1alpha1.DataStore).Spec)
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&privacyv1alpha1.DataStore{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var list privacyv1alpha1.DataStoreList
			if err := mgr.GetClient().List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{secretIndex: o.GetName()}); err != nil {
				return nil
			}
			reqs := make([]reconcile.Request, len(list.Items))
			for i := range list.Items {
				reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
			}
			return reqs
		}), builder.OnlyMetadata, builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		Named("datastore").
		Complete(r)
}

// SetupWithManager registers the reconciler.
func (r *ClusterDataStoreReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &privacyv1alpha1.ClusterDataStore{}, secretIndex, func(o client.Object) []string {
		return storeSecretNames(&o.(*privacyv1alpha1.ClusterDataStore).Spec.DataStoreSpec)
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&privacyv1alpha1.ClusterDataStore{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			if o.GetNamespace() != r.OperatorNamespace {
				return nil
			}
			var list privacyv1alpha1.ClusterDataStoreList
			if err := mgr.GetClient().List(ctx, &list, client.MatchingFields{secretIndex: o.GetName()}); err != nil {
				return nil
			}
			reqs := make([]reconcile.Request, len(list.Items))
			for i := range list.Items {
				reqs[i] = reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}}
			}
			return reqs
		}), builder.OnlyMetadata, builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		Named("clusterdatastore").
		Complete(r)
}
