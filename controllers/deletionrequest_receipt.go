package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

// labelDeletionRequest names a receipt's request when the name fits a label value (and is empty
// otherwise), so that `-l privacy.dsr.dev/deletionrequest` finds every receipt.
const labelDeletionRequest = "privacy.dsr.dev/deletionrequest"

// receiptConfigMapName is the name of a request's receipt ConfigMap: <request>-receipt, shortened
// with a hash for names too long for that.
func receiptConfigMapName(dr *privacyv1alpha1.DeletionRequest) string {
	return requests.DerivedName(dr.Name, receipt.ConfigMapSuffix)
}

// recordedPlan is what the receipt ConfigMap holds under receipt.PlanKey.
type recordedPlan struct {
	// RequestUID tells this request's plan from one left by a deleted request of the same name.
	RequestUID string         `json:"requestUID"`
	Stores     []plannedStore `json:"stores"`
}

type plannedStore struct {
	Kind privacyv1alpha1.StoreKind `json:"kind"`
	Name string                    `json:"name"`
	privacyv1alpha1.EraseCounts
}

// recordPlan creates the receipt ConfigMap holding the plan of the stores planned so far. When an
// earlier attempt crashed after recording its plan, that plan was counted before this request
// erased anything: its counts are kept where they are higher.
func (r *DeletionRequestReconciler) recordPlan(ctx context.Context, s *deletionScope) error {
	dr := s.request
	plan := recordedPlan{RequestUID: string(dr.UID)}
	for _, st := range dr.Status.Stores {
		if st.Planned != nil {
			plan.Stores = append(plan.Stores, plannedStore{Kind: st.Kind, Name: st.Name, EraseCounts: *st.Planned})
		}
	}
	raw, err := json.Marshal(plan)
	if err != nil {
		return err
	}
	cm, created, err := r.createReceiptConfigMap(ctx, dr, map[string]string{receipt.PlanKey: string(raw)}, nil)
	if err != nil {
		return err
	}
	s.receiptConfigMap = cm
	if created {
		return nil
	}
	var earlier recordedPlan
	if raw := cm.Data[receipt.PlanKey]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &earlier); err != nil || earlier.RequestUID != string(dr.UID) {
			s.receiptConfigMap = nil
			return fmt.Errorf("ConfigMap %q holds a plan that is not this request's", cm.Name)
		}
	}
	for _, e := range earlier.Stores {
		for i := range dr.Status.Stores {
			st := &dr.Status.Stores[i]
			if st.Kind == e.Kind && st.Name == e.Name && st.Planned != nil {
				st.Planned.Erased = max(st.Planned.Erased, e.Erased)
				st.Planned.Masked = max(st.Planned.Masked, e.Masked)
				st.Planned.Retained = max(st.Planned.Retained, e.Retained)
			}
		}
	}
	return nil
}

// createReceiptConfigMap creates the request's receipt ConfigMap with data. When it exists
// already (left by an earlier reconcile), it returns that one, created false, refusing a
// ConfigMap that is not this request's.
//
// The ConfigMap has no owner: the receipt is the proof of the erasure and must outlive the
// request for the records period (the retention controller removes it after that). It is tied to
// its request by the request's UID label.
func (r *DeletionRequestReconciler) createReceiptConfigMap(ctx context.Context, dr *privacyv1alpha1.DeletionRequest, data, annotations map[string]string) (cm *corev1.ConfigMap, created bool, err error) {
	cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace: dr.Namespace, Name: receiptConfigMapName(dr),
		Labels:      requests.RequestLabels(labelDeletionRequest, dr.Name, string(dr.UID)),
		Annotations: annotations,
	}, Data: data}
	if err := r.Create(ctx, cm); err == nil {
		return cm, true, nil
	} else if !apierrors.IsAlreadyExists(err) {
		return nil, false, fmt.Errorf("creating the receipt ConfigMap: %w", err)
	}
	var existing corev1.ConfigMap
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cm), &existing); err != nil {
		return nil, false, err
	}
	if !isRequestsReceipt(&existing, dr) {
		return nil, false, fmt.Errorf("ConfigMap %q exists and does not belong to this request", cm.Name)
	}
	return &existing, false, nil
}

// isRequestsReceipt tells the request's own receipt ConfigMap: labelled with its UID, or (written
// before receipts outlived their request) owned by it.
func isRequestsReceipt(cm *corev1.ConfigMap, dr *privacyv1alpha1.DeletionRequest) bool {
	return cm.Labels[requests.LabelRequestUID] == string(dr.UID) || metav1.IsControlledBy(cm, dr)
}

// issueReceipt signs the receipt and stores it next to the plan.
func (r *DeletionRequestReconciler) issueReceipt(ctx context.Context, s *deletionScope) (*privacyv1alpha1.ReceiptReference, error) {
	dr, now := s.request, s.now
	rc := &receipt.Receipt{
		Version: receipt.Version,
		Request: receipt.RequestRef{
			APIVersion: privacyv1alpha1.GroupVersion.String(), Kind: "DeletionRequest",
			Namespace: dr.Namespace, Name: dr.Name, UID: string(dr.UID),
		},
		SubjectDigest: dr.Status.SubjectDigest,
		Regulation:    string(dr.Spec.Regulation),
		CompletedAt:   now,
		IssuedAt:      now,
	}
	if dr.Status.ReceivedAt != nil {
		rc.ReceivedAt = dr.Status.ReceivedAt.Time
	}
	if dr.Status.Deadline != nil {
		rc.Deadline = dr.Status.Deadline.Time
	}
	for _, st := range dr.Status.Stores {
		rs := receipt.Store{Kind: string(st.Kind), Name: st.Name, Type: string(st.Type),
			Erased: st.Erased, Masked: st.Masked, Retained: st.Retained, Remaining: st.Remaining,
			Shared: st.Shared, SharedLocations: receiptLocations(st.SharedLocations),
			Unmapped: st.Unmapped, UnmappedLocations: receiptLocations(st.UnmappedLocations)}
		if st.VerifiedAt != nil {
			rs.VerifiedAt = st.VerifiedAt.Time
		}
		for _, rr := range st.RetainedReasons {
			rs.RetainedReasons = append(rs.RetainedReasons, receipt.RetainedReason{Location: rr.Location, Records: rr.Records, Reason: rr.Reason})
		}
		rc.Stores = append(rc.Stores, rs)
	}
	signed, err := r.Signer.Sign(rc)
	if err != nil {
		return nil, err
	}
	name, err := r.storeReceipt(ctx, s, signed, rc.IssuedAt)
	if err != nil {
		return nil, err
	}
	return &privacyv1alpha1.ReceiptReference{
		ConfigMapName: name, SHA256: signed.SHA256, Signature: receipt.EncodeSignature(signed.Signature),
		KeyID: signed.KeyID, IssuedAt: metav1.NewTime(rc.IssuedAt),
	}, nil
}

// storeReceipt writes the signed receipt into the request's ConfigMap, next to the plan: into
// the one this reconcile created, else into one an earlier reconcile left (status never pointed
// at a receipt in it, so that is replaced), else into a new one, annotated with issuedAt for its
// retention. It returns the ConfigMap's name.
func (r *DeletionRequestReconciler) storeReceipt(ctx context.Context, s *deletionScope, signed *receipt.Signed, issuedAt time.Time) (string, error) {
	issued := issuedAt.UTC().Format(time.RFC3339)
	annotate := func(cm *corev1.ConfigMap) {
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations[receiptIssuedAtAnnotation] = issued
	}
	data := func(plan string) map[string]string {
		d := map[string]string{receipt.DataKey: string(signed.JSON), receipt.SignatureKey: receipt.EncodeSignature(signed.Signature)}
		if plan != "" {
			d[receipt.PlanKey] = plan
		}
		return d
	}
	if cm := s.receiptConfigMap; cm != nil {
		cm.Data = data(cm.Data[receipt.PlanKey])
		annotate(cm)
		if err := r.Update(ctx, cm); err == nil {
			return cm.Name, nil
		}
		// Changed meanwhile (or the update failed): read it again below.
	}
	cm, created, err := r.createReceiptConfigMap(ctx, s.request, data(""), map[string]string{receiptIssuedAtAnnotation: issued})
	if err != nil {
		return "", err
	}
	if created {
		return cm.Name, nil
	}
	cm.Data = data(cm.Data[receipt.PlanKey])
	annotate(cm)
	if err := r.Update(ctx, cm); err != nil {
		return "", fmt.Errorf("updating the receipt ConfigMap: %w", err)
	}
	return cm.Name, nil
}

func receiptLocations(locs []privacyv1alpha1.LocationRecords) []receipt.LocationCount {
	if len(locs) == 0 {
		return nil
	}
	out := make([]receipt.LocationCount, len(locs))
	for i, l := range locs {
		out[i] = receipt.LocationCount{Location: l.Location, Records: l.Records}
	}
	return out
}
