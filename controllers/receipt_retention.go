package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

const (
	// DefaultReceiptRecordsPeriod is how long a receipt is kept after it was issued: 24 months, the
	// records period of the CCPA regulations (§7101).
	DefaultReceiptRecordsPeriod = 17520 * time.Hour
	// DefaultReceiptSweepInterval is how often receipts are looked at for their records period: a
	// receipt is removed at most this long after its period ends.
	DefaultReceiptSweepInterval = time.Hour
	// receiptIssuedAtAnnotation is the receipt's issuedAt (RFC 3339), written with the receipt, so
	// that retention reads ConfigMaps' metadata only.
	receiptIssuedAtAnnotation = "privacy.dsr.dev/receipt-issued-at"
	// receiptSweepPage bounds one list call of the sweep.
	receiptSweepPage = 500
)

// ReceiptRetention removes receipt ConfigMaps once their records period has passed since they
// were issued, whether or not their request still exists. It lists the receipts' metadata every
// Interval instead of watching them: a watch sent every receipt to the operator twice, as its
// plan and as its receipt, to act on it once, two years later.
type ReceiptRetention struct {
	// Client deletes receipts.
	Client client.Client
	// Reader lists receipts from the API server (the manager's cache holds no ConfigMap).
	Reader client.Reader
	// Namespaces are where receipts are looked for: the namespaces the operator may read
	// (--watch-namespaces), or every namespace when empty.
	Namespaces []string
	// RecordsPeriod is how long a receipt is kept (DefaultReceiptRecordsPeriod when 0).
	RecordsPeriod time.Duration
	// Interval is the time between sweeps (DefaultReceiptSweepInterval when 0).
	Interval time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// +kubebuilder:rbac:groups="",resources=configmaps,verbs=list;delete

// Start sweeps at once and then every Interval until ctx ends. A failed sweep is logged and
// tried again at the next one: nothing is lost by a late removal.
func (r *ReceiptRetention) Start(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultReceiptSweepInterval
	}
	log := logf.FromContext(ctx).WithName("receiptretention")
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if removed, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Sweeping receipts past their records period", "removed", removed)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Sweep removes every receipt whose records period has passed and returns how many it removed.
func (r *ReceiptRetention) Sweep(ctx context.Context) (int, error) {
	period := r.RecordsPeriod
	if period <= 0 {
		period = DefaultReceiptRecordsPeriod
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	namespaces := r.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	removed := 0
	var errs []error
	for _, ns := range namespaces {
		n, err := r.sweepNamespace(ctx, ns, now, period)
		removed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// sweepNamespace is Sweep in one namespace (every namespace for metav1.NamespaceAll).
func (r *ReceiptRetention) sweepNamespace(ctx context.Context, namespace string, now time.Time, period time.Duration) (int, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMapList"))
	selector := client.MatchingLabelsSelector{Selector: receiptSelector()}
	removed := 0
	var errs []error
	for next := ""; ; {
		if err := r.Reader.List(ctx, list, client.InNamespace(namespace), selector, client.Limit(receiptSweepPage), client.Continue(next)); err != nil {
			return removed, errors.Join(append(errs, err)...)
		}
		for i := range list.Items {
			cm := &list.Items[i]
			if !cm.DeletionTimestamp.IsZero() {
				continue
			}
			issued, err := r.issuedAt(ctx, cm, now.Add(-period))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if now.Before(issued.Add(period)) {
				continue
			}
			// The UID precondition: a ConfigMap of the same name made since is not this receipt.
			err = r.Client.Delete(ctx, cm, client.Preconditions{UID: &cm.UID})
			if err == nil {
				removed++
				logf.FromContext(ctx).Info("Receipt removed at the end of its records period",
					"namespace", cm.Namespace, "configMap", cm.Name, "issuedAt", issued.Format(time.RFC3339), "period", period.String())
			} else if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				errs = append(errs, err)
			}
		}
		if next = list.Continue; next == "" {
			return removed, errors.Join(errs...)
		}
	}
}

// receiptSelector selects the operator's receipts: labelled as its own and with their request's
// UID. A receipt carries no owner reference, so that it outlives its request.
func receiptSelector() labels.Selector {
	managed, _ := labels.NewRequirement(requests.LabelManagedBy, selection.Equals, []string{requests.ManagedByValue})
	forRequest, _ := labels.NewRequirement(requests.LabelRequestUID, selection.Exists, nil)
	return labels.NewSelector().Add(*managed, *forRequest)
}

// issuedAt is when a receipt ConfigMap was issued: the annotation written with the receipt. A
// ConfigMap without it (holding only the plan, or written before the annotation existed) is read
// whole, but only when it could have expired: a receipt is issued after its ConfigMap is created,
// so one created after expiredBefore cannot be due.
func (r *ReceiptRetention) issuedAt(ctx context.Context, cm *metav1.PartialObjectMetadata, expiredBefore time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, cm.Annotations[receiptIssuedAtAnnotation]); err == nil {
		return t, nil
	}
	created := cm.CreationTimestamp.Time
	if created.After(expiredBefore) {
		return created, nil
	}
	var full corev1.ConfigMap
	if err := r.Reader.Get(ctx, client.ObjectKeyFromObject(cm), &full); err != nil {
		return created, client.IgnoreNotFound(err)
	}
	return receiptIssuedAt(&full), nil
}

// receiptIssuedAt is when a receipt ConfigMap was issued: its receipt's issuedAt, or, while it
// holds only the plan (or a receipt that does not parse), when the ConfigMap was created.
func receiptIssuedAt(cm *corev1.ConfigMap) time.Time {
	var issued struct {
		IssuedAt time.Time `json:"issuedAt"`
	}
	if raw := cm.Data[receipt.DataKey]; raw != "" && json.Unmarshal([]byte(raw), &issued) == nil && !issued.IssuedAt.IsZero() {
		return issued.IssuedAt
	}
	return cm.CreationTimestamp.Time
}

// NeedLeaderElection: only the leader removes receipts.
func (r *ReceiptRetention) NeedLeaderElection() bool { return true }
