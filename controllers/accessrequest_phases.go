package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/export"
	"github.com/dsr-operator/dsr-operator/internal/metrics"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/secretref"
	"github.com/dsr-operator/dsr-operator/internal/stores"
)

// labelAccessRequest names an export's request when the name fits a label value (and is empty
// otherwise).
const labelAccessRequest = "privacy.dsr.dev/accessrequest"

// exportSecretName is the name of a request's export Secret: <request>-export, shortened with a
// hash for names too long for that.
func exportSecretName(ar *privacyv1alpha1.AccessRequest) string {
	return requests.DerivedName(ar.Name, "-export")
}

// acceptRequest resolves the subject and the stores and lists each store in the status.
func (r *AccessRequestReconciler) acceptRequest(ctx context.Context, s *accessScope) (bool, error) {
	acc, err := s.accept(ctx)
	if acc == nil || err != nil {
		return false, err
	}
	if proceed, err := s.deriveLinked(ctx, labelAccessRequest); !proceed || err != nil {
		return false, err
	}
	ar := s.request
	ar.Status.Stores = make([]privacyv1alpha1.AccessStoreStatus, len(acc.Stores))
	for i, st := range acc.Stores {
		ar.Status.Stores[i] = privacyv1alpha1.AccessStoreStatus{StoreProgress: privacyv1alpha1.StoreProgress{
			Name: st.Ref.Name, Kind: st.Ref.Kind, Type: st.Spec.Type, Phase: privacyv1alpha1.StorePending,
			Derived: s.derivedStatus(i)}}
	}
	ar.Status.Phase = privacyv1alpha1.PhaseCollecting
	s.effect.normal(privacyv1alpha1.ReasonAccepted, "Accept",
		fmt.Sprintf("accepted for %d stores; deadline %s", len(acc.Stores), acc.Deadline.Format(time.RFC3339)))
	return true, nil
}

// readIdentifiers reads the subject again; a Secret that cannot be read ends the reconcile.
func (r *AccessRequestReconciler) readIdentifiers(ctx context.Context, s *accessScope) (bool, error) {
	return s.readIdentifiers(ctx)
}

// collectFromDueStores collects from every store that is not backing off. The export is built only
// from one pass in which every store answered, so it never mixes a retried store's data with stale
// data: the reconcile goes on to delivery only then.
//
// Records are spooled to disk as they are read (export.Spool), from connectors that stream them
// (connector.CollectStreamer) one at a time, so that the manager's memory does not grow with the
// export.
func (r *AccessRequestReconciler) collectFromDueStores(ctx context.Context, s *accessScope) (bool, error) {
	ar := s.request
	resolved := make([]*stores.Store, len(ar.Status.Stores))
	s.spool = export.NewSpool(r.SpoolDir)
	results := requests.Run(ctx, s.fanOut(func(ctx context.Context, i int) (connector.Client, func(), error) {
		st := &ar.Status.Stores[i]
		store := (*stores.Store)(nil)
		if s.acceptedStores != nil {
			store = &s.acceptedStores[i]
		} else {
			var err error
			if store, err = stores.Get(ctx, r.Client, ar.Namespace, st.Kind, st.Name); err != nil {
				return nil, nil, err
			}
		}
		resolved[i] = store
		lease, err := r.Pool.Acquire(ctx, store, false)
		if err != nil {
			return nil, nil, err
		}
		return lease.Client(), lease.Release, nil
	}), accessProgress(ar), func(i int) bool {
		return !requests.IsBackingOff(&ar.Status.Stores[i].StoreProgress, s.now)
	}, func(ctx context.Context, i int, cl connector.Client) (*export.StoreSpool, error) {
		return collectFromStore(ctx, s, cl, &ar.Status.Stores[i])
	})

	inputs := make([]export.StoreInput, len(results))
	complete := true
	for i, res := range results {
		st := &ar.Status.Stores[i]
		if res.NewlyFailing {
			s.effect.warn(res.Failure.Reason, "Collect", fmt.Sprintf("%s: %s", storeLabel(&st.StoreProgress), res.Failure.Message))
		}
		if !res.Ran || res.Failure != nil || res.Value == nil {
			complete = false
			continue
		}
		inputs[i] = export.StoreInput{Kind: st.Kind, Name: st.Name, Spec: resolved[i].Spec, Spooled: res.Value}
	}
	if !complete {
		// What was spooled goes with the spool; the next pass collects every store again.
		return false, nil
	}
	s.collected = inputs
	return true, nil
}

// collectFromStore collects the subject's records from one store into its part of the spool. It
// returns nil, and no error, when the store is still collecting.
func collectFromStore(ctx context.Context, s *accessScope, cl connector.Client, st *privacyv1alpha1.AccessStoreStatus) (*export.StoreSpool, error) {
	spooled := s.spool.Store()
	var spoolErr error
	add := func(rec connector.Record) error {
		if err := spooled.Add(rec); err != nil {
			spoolErr = err
			return err
		}
		return nil
	}
	req := s.subjectRequest(string(s.request.UID))
	var pending bool
	var err error
	if streamer, ok := cl.(connector.CollectStreamer); ok {
		pending, err = streamer.CollectTo(ctx, req, add)
	} else {
		var col *connector.Collection
		if col, err = cl.Collect(ctx, req); err == nil {
			pending = col.Pending
			if !pending {
				err = spooled.AddAll(col.Records)
				spoolErr = err
			}
		}
	}
	if err == nil {
		err = spooled.Finish()
		spoolErr = err
	}
	if spoolErr != nil {
		// The manager's disk, not the store: the text names no value and is retried.
		err = &connector.Error{Kind: connector.KindUnavailable, Op: "collect",
			Hint: "the manager could not spool the records to its disk (--export-spool-dir): " + spoolErr.Error(), Err: spoolErr}
	}
	metrics.StoreOperations.WithLabelValues(string(st.Type), "collect", result(err, pending)).Inc()
	if err != nil {
		return nil, err
	}
	if pending {
		st.Phase = privacyv1alpha1.StorePending
		requests.PollAt(&st.StoreProgress, s.now.Add(pendingPoll), "the store is still collecting")
		return nil, nil
	}
	requests.EnterStep(&st.StoreProgress, privacyv1alpha1.StoreCollected)
	st.Records = spooled.Count()
	st.CollectedAt = ptrTime(s.now)
	return spooled, nil
}

// deliverExport writes the export Secret. Its name is fixed, so a reconcile that crashed after
// writing it overwrites it rather than leaving a second copy of the person's data behind.
func (r *AccessRequestReconciler) deliverExport(ctx context.Context, s *accessScope) (bool, error) {
	ar := s.request
	doc := export.BuildWithContext(r.ReportContext, export.Request{Namespace: ar.Namespace, Name: ar.Name, UID: string(ar.UID)},
		string(ar.Spec.Regulation), ar.Status.SubjectDigest, s.now, s.collected)
	if ar.Spec.Destination != nil && ar.Spec.Destination.S3 != nil {
		// Not bounded by the Secret's size: the files go to the bucket, the Secret holds links.
		return r.deliverToDestination(ctx, s, doc)
	}
	files, err := export.EncodeFiles(doc, exportFormats(&ar.Spec), r.MaxExportBytes)
	if err != nil {
		var tooLarge *export.TooLargeError
		if errors.As(err, &tooLarge) {
			ar.Status.Phase = privacyv1alpha1.PhaseFailed
			s.facts.blocked = &blockingFailure{privacyv1alpha1.ReasonExportTooLarge, tooLarge.Error()}
			return false, nil
		}
		s.log.Error(err, "Encoding the export")
		s.facts.blocked = &blockingFailure{privacyv1alpha1.ReasonExportNotDelivered, "encoding the export failed; retrying"}
		s.effect.after(pendingPoll)
		return false, nil
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Namespace: ar.Namespace, Name: exportSecretName(ar),
		Labels: requests.RequestLabels(labelAccessRequest, ar.Name, string(ar.UID)),
	}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{}}
	var total int
	for _, f := range files {
		secret.Data[f.Key] = f.Bytes
		total += len(f.Bytes)
	}
	if err := ctrl.SetControllerReference(ar, secret, r.Scheme()); err != nil {
		return false, err
	}
	if err := r.writeExportSecret(ctx, ar, secret); err != nil {
		s.log.Error(err, "Delivering the export")
		s.facts.blocked = &blockingFailure{privacyv1alpha1.ReasonExportNotDelivered, "delivering the export failed; retrying: " + err.Error()}
		s.effect.after(pendingPoll)
		return false, nil
	}
	// The export holds what the derived values found; they are not needed any more.
	if err := s.deleteDerived(ctx); err != nil {
		s.log.Error(err, "Deleting the derived values")
	}
	expires := s.now.Add(exportTTL(ar))
	first := files[0]
	ar.Status.Export = &privacyv1alpha1.ExportReference{SecretName: secret.Name, Key: first.Key, SHA256: first.SHA256,
		Bytes: int64(len(first.Bytes)), Encoding: first.Encoding, ExpiresAt: ptrTime(expires)}
	for _, f := range files {
		ar.Status.Export.Files = append(ar.Status.Export.Files, privacyv1alpha1.ExportFile{Format: f.Format, Key: f.Key,
			SHA256: f.SHA256, Bytes: int64(len(f.Bytes)), Encoding: f.Encoding})
	}
	ar.Status.Phase = privacyv1alpha1.PhaseCompleted
	ar.Status.CompletionTime = ptrTime(s.now)
	s.effect.at(expires)
	s.effect.normal(privacyv1alpha1.ReasonExportDelivered, "Deliver", fmt.Sprintf("export of %d records from %d stores delivered in Secret %s (%d files, %d bytes)",
		doc.RecordCount, len(doc.Stores), secret.Name, len(files), total))
	return true, nil
}

// exportFormats is the formats a request asks for, JSON first (status.export.key has always named
// the JSON document) and each once: spec.formats, else spec.format, else JSON.
func exportFormats(spec *privacyv1alpha1.AccessRequestSpec) []privacyv1alpha1.ExportFormat {
	asked := spec.Formats
	if len(asked) == 0 && spec.Format != "" {
		asked = []privacyv1alpha1.ExportFormat{spec.Format}
	}
	var out []privacyv1alpha1.ExportFormat
	for _, f := range []privacyv1alpha1.ExportFormat{privacyv1alpha1.ExportFormatJSON, privacyv1alpha1.ExportFormatCSV, privacyv1alpha1.ExportFormatHTML} {
		if slices.Contains(asked, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		out = []privacyv1alpha1.ExportFormat{privacyv1alpha1.ExportFormatJSON}
	}
	return out
}

// writeExportSecret creates the export Secret, or replaces the data of the one an earlier
// reconcile of this request left.
func (r *AccessRequestReconciler) writeExportSecret(ctx context.Context, ar *privacyv1alpha1.AccessRequest, secret *corev1.Secret) error {
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

// expireExport deletes the export when its TTL passes: the export is personal data too.
func (r *AccessRequestReconciler) expireExport(ctx context.Context, s *accessScope) (bool, error) {
	ar := s.request
	if ar.Status.Export == nil || ar.Status.Export.ExpiresAt == nil {
		return false, nil
	}
	if s.now.Before(ar.Status.Export.ExpiresAt.Time) {
		s.effect.at(ar.Status.Export.ExpiresAt.Time)
		return false, nil
	}
	// The files in the bucket go first: the Secret stays until they are gone, so that what is
	// left stays described.
	if ar.Status.Export.Delivery != nil && !r.expireDestination(ctx, s) {
		return false, nil
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ar.Namespace, Name: ar.Status.Export.SecretName}}
	if err := r.Delete(ctx, secret); client.IgnoreNotFound(err) != nil {
		return false, fmt.Errorf("deleting the export Secret: %w", err)
	}
	// The identifiers served only this export: they go with it (when marked as identifiers).
	if _, err := secretref.DeleteIdentifiers(ctx, r.Client, r.APIReader, ar, ar.Namespace, ar.Spec.Subject.IdentifiersSecretRef.Name); err != nil {
		return false, fmt.Errorf("deleting the identifiers Secret: %w", err)
	}
	ar.Status.Phase = privacyv1alpha1.PhaseExpired
	if ar.Status.Export.Delivery != nil {
		// The next reconcile, after this status is written, lets the request go (its finalizer).
		s.effect.after(0)
	}
	s.effect.normal(privacyv1alpha1.ReasonExpired, "Expire", expiredMessage(ar))
	return true, nil
}

func expiredMessage(ar *privacyv1alpha1.AccessRequest) string {
	msg := fmt.Sprintf("the export's TTL passed at %s; Secret %s was deleted", ar.Status.Export.ExpiresAt.UTC().Format(time.RFC3339), ar.Status.Export.SecretName)
	if d := ar.Status.Export.Delivery; d != nil {
		msg += fmt.Sprintf("; %d object versions were deleted from bucket %s and a listing found none left", d.Removed, d.Bucket)
	}
	return msg
}
