package controllers

import (
	"context"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

const (
	// DefaultReceiptRecordsPeriod is how long a receipt is kept after it was issued: 24 months, the
	// records period of the CCPA regulations (§7101).
	DefaultReceiptRecordsPeriod = 17520 * time.Hour
	// receiptManagedByLabel and receiptRequestUIDLabel mark a receipt ConfigMap: the operator
	// made it, for the request of that UID. A receipt carries no owner reference, so that it
	// outlives its request.
	receiptManagedByLabel  = "app.kubernetes.io/managed-by"
	receiptManagedByValue  = "dsr-operator"
	receiptRequestUIDLabel = "privacy.dsr.dev/request-uid"
	// receiptIssuedAtAnnotation holds, in the operator's cache only, the issuedAt of the receipt
	// in the ConfigMap; the cache keeps no data (see ReceiptCache).
	receiptIssuedAtAnnotation = "privacy.dsr.dev/cached-issued-at"
)

// ReceiptRetentionReconciler removes receipt ConfigMaps once their records period has passed since
// they were issued, whether or not their request still exists.
type ReceiptRetentionReconciler struct {
	// Client deletes receipts.
	Client client.Client
	// Cache reads receipts as ReceiptCache keeps them.
	Cache client.Reader
	// RecordsPeriod is how long a receipt is kept (DefaultReceiptRecordsPeriod when 0).
	RecordsPeriod time.Duration
	// Now is the clock; tests leave it nil.
	Now func() time.Time
}

// +kubebuilder:rbac:groups="",resources=configmaps,verbs=list;watch;delete

// ReceiptCache is the cache rule for ConfigMaps: only the operator's receipts, each kept as its
// metadata and its issue time. The operator reads no other ConfigMap through the cache.
func ReceiptCache() cache.ByObject {
	managed, _ := labels.NewRequirement(receiptManagedByLabel, selection.Equals, []string{receiptManagedByValue})
	forRequest, _ := labels.NewRequirement(receiptRequestUIDLabel, selection.Exists, nil)
	return cache.ByObject{Label: labels.NewSelector().Add(*managed, *forRequest), Transform: receiptIssueTimeOnly}
}

// receiptIssueTimeOnly keeps what retention reads of a receipt ConfigMap: its metadata and the
// receipt's issuedAt, not the receipt and plan themselves.
func receiptIssueTimeOnly(in any) (any, error) {
	cm, ok := in.(*corev1.ConfigMap)
	if !ok {
		return in, nil
	}
	out := &corev1.ConfigMap{TypeMeta: cm.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Namespace: cm.Namespace, Name: cm.Name, UID: cm.UID, ResourceVersion: cm.ResourceVersion,
		Labels: cm.Labels, CreationTimestamp: cm.CreationTimestamp, DeletionTimestamp: cm.DeletionTimestamp,
	}}
	var issued struct {
		IssuedAt time.Time `json:"issuedAt"`
	}
	if raw := cm.Data[receipt.DataKey]; raw != "" && json.Unmarshal([]byte(raw), &issued) == nil && !issued.IssuedAt.IsZero() {
		out.Annotations = map[string]string{receiptIssuedAtAnnotation: issued.IssuedAt.UTC().Format(time.RFC3339)}
	} else if at, kept := cm.Annotations[receiptIssuedAtAnnotation]; kept && len(cm.Data) == 0 {
		// The informer may hand an object it already transformed back to the transform (on a
		// relist); it has no data left, so the issue time it carries must be kept.
		out.Annotations = map[string]string{receiptIssuedAtAnnotation: at}
	}
	return out, nil
}

// receiptIssuedAt is when a cached receipt ConfigMap was issued: its receipt's issuedAt, or, while
// it holds only the plan (or a receipt that does not parse), when the ConfigMap was created.
func receiptIssuedAt(cm *corev1.ConfigMap) time.Time {
	if t, err := time.Parse(time.RFC3339, cm.Annotations[receiptIssuedAtAnnotation]); err == nil {
		return t
	}
	return cm.CreationTimestamp.Time
}

// Reconcile removes one receipt whose records period has passed, or looks again when it will have.
func (r *ReceiptRetentionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cm corev1.ConfigMap
	if err := r.Cache.Get(ctx, req.NamespacedName, &cm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if cm.Labels[receiptRequestUIDLabel] == "" || !cm.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	period := r.RecordsPeriod
	if period <= 0 {
		period = DefaultReceiptRecordsPeriod
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	expires := receiptIssuedAt(&cm).Add(period)
	if now.Before(expires) {
		return ctrl.Result{RequeueAfter: expires.Sub(now)}, nil
	}
	// The UID precondition: a ConfigMap of the same name made since is not this receipt.
	err := r.Client.Delete(ctx, &cm, client.Preconditions{UID: &cm.UID})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return ctrl.Result{}, err
	}
	if err == nil {
		logf.FromContext(ctx).Info("Receipt removed at the end of its records period", "issuedAt", receiptIssuedAt(&cm).Format(time.RFC3339), "period", period.String())
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler. Only receipts reach it: the cache holds no other
// ConfigMap (ReceiptCache).
func (r *ReceiptRetentionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&corev1.ConfigMap{}).
		Named("receiptretention").
		Complete(r)
}
