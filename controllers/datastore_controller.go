package controllers

import (
	"context"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// DataStoreReconciler checks that a namespaced DataStore is usable and reports it as Ready.
type DataStoreReconciler struct {
	Dependencies
	// SecretPollInterval is how often a rotated Secret is looked for (DefaultSecretPollInterval
	// when 0).
	SecretPollInterval time.Duration
	checked            secretVersions
}

// ClusterDataStoreReconciler does the same for ClusterDataStores, whose Secrets live in the
// operator's namespace.
type ClusterDataStoreReconciler struct {
	Dependencies
	// SecretPollInterval is how often a rotated Secret is looked for (DefaultSecretPollInterval
	// when 0).
	SecretPollInterval time.Duration
	checked            secretVersions
}

// Secrets are read one by one (get), never listed or watched: a store polls its Secrets instead.
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=datastores;clusterdatastores,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=datastores/status;clusterdatastores/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile checks one DataStore.
func (r *DataStoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sr := storeReconciler{Dependencies: &r.Dependencies, secretPoll: r.SecretPollInterval, checked: &r.checked}
	return sr.reconcile(ctx, req, dataStore{&privacyv1alpha1.DataStore{}})
}

// Reconcile checks one ClusterDataStore.
func (r *ClusterDataStoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sr := storeReconciler{Dependencies: &r.Dependencies, secretPoll: r.SecretPollInterval, checked: &r.checked}
	return sr.reconcile(ctx, req, clusterDataStore{&privacyv1alpha1.ClusterDataStore{}})
}

// SetupWithManager registers the reconciler. Status writes wake nothing: every check asks for the
// next visit, which also looks for a rotated Secret.
func (r *DataStoreReconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&privacyv1alpha1.DataStore{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("datastore").
		Complete(r)
}

// SetupWithManager registers the reconciler.
func (r *ClusterDataStoreReconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&privacyv1alpha1.ClusterDataStore{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("clusterdatastore").
		Complete(r)
}
