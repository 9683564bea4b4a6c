package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/export"
	"github.com/dsr-operator/dsr-operator/internal/metrics"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/secretref"
	"github.com/dsr-operator/dsr-operator/internal/stores"
)

const defaultExportTTL = 168 * time.Hour

// AccessRequestReconciler collects a subject's records from every store a request may use, delivers
// them as one export Secret and deletes the export when its TTL passes.
type AccessRequestReconciler struct {
	Shared
	// MaxExportBytes bounds the export (export.MaxBytes when 0).
	MaxExportBytes int
}

// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=accessrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=accessrequests/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update;delete

// Reconcile moves one access request one step along its life.
func (r *AccessRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ar privacyv1alpha1.AccessRequest
	if err := r.Get(ctx, req.NamespacedName, &ar); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ar.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := ar.DeepCopy()
	st := &step{now: r.now()}
	var err error
	switch ar.Status.Phase {
	case "", privacyv1alpha1.PhasePending:
		err = r.accept(ctx, &ar, st)
	case privacyv1alpha1.PhaseCollecting:
		err = r.collect(ctx, &ar, st)
	case privacyv1alpha1.PhaseCompleted:
		err = r.expire(ctx, &ar, st)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	done := ar.Status.Phase == privacyv1alpha1.PhaseCompleted || ar.Status.Phase == privacyv1alpha1.PhaseExpired || ar.Status.Phase == privacyv1alpha1.PhaseFailed
	checkDeadline(&ar.Status.RequestStatusCommon, ar.Generation, done, st)
	summarizeAccess(&ar)
	ar.Status.ObservedGeneration = ar.Generation
	return r.finish(ctx, &ar, before, !equality.Semantic.DeepEqual(before.Status, ar.Status), st)
}

func (r *AccessRequestReconciler) accept(ctx context.Context, ar *privacyv1alpha1.AccessRequest, st *step) error {
	acc, err := r.Shared.accept(ctx, ar, &ar.Spec.RequestSpecCommon, &ar.Status.RequestStatusCommon, st)
	if acc == nil || err != nil {
		return err
	}
	ar.Status.Stores = make([]privacyv1alpha1.AccessStoreStatus, len(acc.Stores))
	for i, s := range acc.Stores {
		ar.Status.Stores[i] = privacyv1alpha1.AccessStoreStatus{Name: s.Ref.Name, Kind: s.Ref.Kind, Type: s.Spec.Type, Phase: privacyv1alpha1.StorePending}
	}
	ar.Status.Phase = privacyv1alpha1.PhaseCollecting
	setCondition(&ar.Status.Conditions, ar.Generation, privacyv1alpha1.ConditionAccepted, metav1.ConditionTrue,
		privacyv1alpha1.ReasonAccepted, fmt.Sprintf("subject resolved; %d stores", len(acc.Stores)))
	st.normal(privacyv1alpha1.ReasonAccepted, "Accept", fmt.Sprintf("accepted for %d stores; deadline %s", len(acc.Stores), acc.Deadline.Format(time.RFC3339)))
	r.gather(ctx, ar, acc.Identifiers, acc.Stores, st)
	return nil
}

func (r *AccessRequestReconciler) collect(ctx context.Context, ar *privacyv1alpha1.AccessRequest, st *step) error {
	ids, ok, err := r.readSubject(ctx, ar, &ar.Spec.RequestSpecCommon, &ar.Status.RequestStatusCommon, privacyv1alpha1.ConditionCollected, st)
	if err != nil || !ok {
		return err
	}
	r.gather(ctx, ar, ids, nil, st)
	return nil
}

// gather collects from every store that is not backing off. The export is built only from one pass
// in which every store answered, so it never mixes a retried store's data with stale data.
func (r *AccessRequestReconciler) gather(ctx context.Context, ar *privacyv1alpha1.AccessRequest, ids connector.Identifiers, resolved []stores.Store, st *step) {
	n := len(ar.Status.Stores)
	inputs := make([]*export.StoreInput, n)
	var due []int
	for i := range ar.Status.Stores {
		s := &ar.Status.Stores[i]
		if s.NextAttemptAt != nil && st.now.Before(s.NextAttemptAt.Time) {
			st.at(s.NextAttemptAt.Time)
			continue
		}
		due = append(due, i)
	}
	var mu sync.Mutex
	r.run(ctx, len(due), func(ctx context.Context, j int) {
		i := due[j]
		s := &ar.Status.Stores[i]
		var store *stores.Store
		var err error
		if resolved != nil {
			store = &resolved[i]
		} else {
			store, err = stores.Get(ctx, r.Client, ar.Namespace, s.Kind, s.Name)
		}
		var col *connector.Collection
		if err == nil {
			var cl connector.Client
			if cl, err = r.Pool.Client(ctx, store, false); err == nil {
				col, err = cl.Collect(ctx, connector.Request{ID: string(ar.UID), Identifiers: ids})
			}
			metrics.StoreOperations.WithLabelValues(string(s.Type), "collect", result(err, col != nil && col.Pending)).Inc()
		}
		if err != nil {
			f := requests.Classify(err, ids)
			s.Attempts++
			s.NextAttemptAt = ptrTime(requests.NextAttempt(st.now, s.Attempts, f.Transient))
			st.at(s.NextAttemptAt.Time)
			s.Message = f.Message
			prev := s.Phase
			s.Phase = privacyv1alpha1.StoreRetrying
			if !f.Transient {
				s.Phase = privacyv1alpha1.StoreFailed
			}
			if prev != s.Phase {
				st.warn(f.Reason, "Collect", fmt.Sprintf("%s %s: %s", s.Kind, s.Name, f.Message))
			}
			return
		}
		if col.Pending {
			s.Phase, s.Message = privacyv1alpha1.StorePending, "the store is still collecting"
			s.NextAttemptAt = ptrTime(st.now.Add(pendingPoll))
			st.at(s.NextAttemptAt.Time)
			return
		}
		s.Phase, s.Records, s.Message, s.NextAttemptAt = privacyv1alpha1.StoreCollected, int64(len(col.Records)), "", nil
		s.CollectedAt = ptrTime(st.now)
		mu.Lock()
		inputs[i] = &export.StoreInput{Kind: s.Kind, Name: s.Name, Spec: store.Spec, Data: col}
		mu.Unlock()
	})

	var failed, retrying, missing int
	for i, s := range ar.Status.Stores {
		switch s.Phase {
		case privacyv1alpha1.StoreFailed:
			failed++
		case privacyv1alpha1.StoreRetrying:
			retrying++
		}
		if inputs[i] == nil {
			missing++
		}
	}
	conds, gen := &ar.Status.Conditions, ar.Generation
	if missing > 0 {
		switch {
		case failed > 0:
			setCondition(conds, gen, privacyv1alpha1.ConditionCollected, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreFailed,
				fmt.Sprintf("%d stores failed and are retried slowly until fixed; see status.stores", failed))
		case retrying > 0:
			setCondition(conds, gen, privacyv1alpha1.ConditionCollected, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreUnavailable,
				fmt.Sprintf("%d stores are unavailable and retried with backoff; see status.stores", retrying))
		default:
			setCondition(conds, gen, privacyv1alpha1.ConditionCollected, metav1.ConditionFalse, privacyv1alpha1.ReasonCollecting,
				fmt.Sprintf("%d of %d stores left", missing, n))
		}
		return
	}
	var total int64
	all := make([]export.StoreInput, n)
	for i, in := range inputs {
		all[i] = *in
		total += int64(len(in.Data.Records))
	}
	setCondition(conds, gen, privacyv1alpha1.ConditionCollected, metav1.ConditionTrue, privacyv1alpha1.ReasonCollected,
		fmt.Sprintf("%d records from %d stores", total, n))
	r.deliver(ctx, ar, all, st)
}

// deliver writes the export Secret. Its name is fixed, so a reconcile that crashed after writing it
// overwrites it rather than leaving a second copy of the person's data behind.
func (r *AccessRequestReconciler) deliver(ctx context.Context, ar *privacyv1alpha1.AccessRequest, inputs []export.StoreInput, st *step) {
	doc := export.Build(export.Request{Namespace: ar.Namespace, Name: ar.Name, UID: string(ar.UID)},
		string(ar.Spec.Regulation), ar.Status.SubjectDigest, st.now, inputs)
	enc, err := export.Encode(doc, r.MaxExportBytes)
	if err != nil {
		var tl *export.TooLargeError
		if !errors.As(err, &tl) {
			setCondition(&ar.Status.Conditions, ar.Generation, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonFailed, err.Error())
			st.after(pendingPoll)
			return
		}
		ar.Status.Phase = privacyv1alpha1.PhaseFailed
		setCondition(&ar.Status.Conditions, ar.Generation, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonExportTooLarge, tl.Error())
		st.warn(privacyv1alpha1.ReasonExportTooLarge, "Deliver", tl.Error())
		return
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Namespace: ar.Namespace, Name: ar.Name + "-export",
		Labels: map[string]string{"app.kubernetes.io/managed-by": "dsr-operator", "privacy.dsr.dev/accessrequest": ar.Name},
	}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{enc.Key: enc.Bytes}}
	if err := ctrl.SetControllerReference(ar, secret, r.Scheme()); err != nil {
		setCondition(&ar.Status.Conditions, ar.Generation, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonFailed, err.Error())
		return
	}
	if err := r.writeSecret(ctx, ar, secret); err != nil {
		setCondition(&ar.Status.Conditions, ar.Generation, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonFailed, "delivering the export failed; retrying: "+err.Error())
		st.after(pendingPoll)
		return
	}
	ttl := defaultExportTTL
	if ar.Spec.TTL != nil && ar.Spec.TTL.Duration > 0 {
		ttl = ar.Spec.TTL.Duration
	}
	expires := st.now.Add(ttl)
	ar.Status.Export = &privacyv1alpha1.ExportReference{SecretName: secret.Name, Key: enc.Key, SHA256: enc.SHA256,
		Bytes: int64(len(enc.Bytes)), Encoding: enc.Encoding, ExpiresAt: ptrTime(expires)}
	ar.Status.Phase = privacyv1alpha1.PhaseCompleted
	ar.Status.CompletionTime = ptrTime(st.now)
	setCondition(&ar.Status.Conditions, ar.Generation, privacyv1alpha1.ConditionExpired, metav1.ConditionFalse, privacyv1alpha1.ReasonNotExpired,
		"the export expires at "+expires.UTC().Format(time.RFC3339))
	st.at(expires)
	st.normal(privacyv1alpha1.ReasonExportDelivered, "Deliver", fmt.Sprintf("export of %d records from %d stores delivered in Secret %s (%d bytes, %s)",
		doc.RecordCount, len(doc.Stores), secret.Name, len(enc.Bytes), enc.Encoding))
}

func (r *AccessRequestReconciler) writeSecret(ctx context.Context, ar *privacyv1alpha1.AccessRequest, secret *corev1.Secret) error {
	err := r.Create(ctx, secret)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return err
	}
	var existing corev1.Secret
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(secret), &existing); err != nil {
		return err
	}
	if !metav1.IsControlledBy(&existing, ar) {
		return fmt.Errorf("secret %q exists and does not belong to this request", secret.Name)
	}
	existing.Data = secret.Data
	return r.Update(ctx, &existing)
}

// expire deletes the export when its TTL passes: the export is personal data too.
func (r *AccessRequestReconciler) expire(ctx context.Context, ar *privacyv1alpha1.AccessRequest, st *step) error {
	if ar.Status.Export == nil || ar.Status.Export.ExpiresAt == nil {
		return nil
	}
	if st.now.Before(ar.Status.Export.ExpiresAt.Time) {
		st.at(ar.Status.Export.ExpiresAt.Time)
		return nil
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ar.Namespace, Name: ar.Status.Export.SecretName}}
	if err := r.Delete(ctx, secret); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the export Secret: %w", err)
	}
	if _, err := secretref.DeleteIdentifiers(ctx, r.Client, r.APIReader, ar, ar.Namespace, ar.Spec.Subject.IdentifiersSecretRef.Name); err != nil {
		return fmt.Errorf("deleting the identifiers Secret: %w", err)
	}
	ar.Status.Phase = privacyv1alpha1.PhaseExpired
	msg := fmt.Sprintf("the export's TTL passed at %s; Secret %s was deleted", ar.Status.Export.ExpiresAt.UTC().Format(time.RFC3339), secret.Name)
	setCondition(&ar.Status.Conditions, ar.Generation, privacyv1alpha1.ConditionExpired, metav1.ConditionTrue, privacyv1alpha1.ReasonExpired, msg)
	st.normal(privacyv1alpha1.ReasonExpired, "Expire", msg)
	return nil
}

func summarizeAccess(ar *privacyv1alpha1.AccessRequest) {
	conds, gen := &ar.Status.Conditions, ar.Generation
	switch ar.Status.Phase {
	case privacyv1alpha1.PhaseCompleted:
		setCondition(conds, gen, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered,
			fmt.Sprintf("export delivered in Secret %s", ar.Status.Export.SecretName))
	case privacyv1alpha1.PhaseExpired:
		setCondition(conds, gen, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonExpired, "the export expired and was deleted")
	case privacyv1alpha1.PhaseFailed:
	default:
		if c := findCondition(*conds, privacyv1alpha1.ConditionReady); c != nil && c.Reason == privacyv1alpha1.ReasonFailed {
			return
		}
		summarizeFrom(conds, gen, privacyv1alpha1.ConditionAccepted, privacyv1alpha1.ConditionCollected)
	}
}

// SetupWithManager registers the reconciler.
func (r *AccessRequestReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&privacyv1alpha1.AccessRequest{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Named("accessrequest").
		Complete(r)
}
