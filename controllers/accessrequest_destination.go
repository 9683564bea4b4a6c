package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/export"
	"github.com/dsr-operator/dsr-operator/internal/export/deliver"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/secretref"
)

// reasonExpiryRetrying: the export's TTL passed but its files could not (yet) all be deleted from
// the destination; retried with backoff.
const reasonExpiryRetrying = "ExpiryRetrying"

// destinationManifestKey is the key of the export Secret that lists the uploaded files with their
// digests, sizes and download links. The links are credentials: they are only ever written here.
const destinationManifestKey = "files.json"

// destinationManifest is the export Secret's files.json.
type destinationManifest struct {
	Bucket string             `json:"bucket"`
	Prefix string             `json:"prefix"`
	Files  []destinationEntry `json:"files"`
}

type destinationEntry struct {
	Name          string    `json:"name"`
	Format        string    `json:"format"`
	Object        string    `json:"object"`
	ContentType   string    `json:"contentType"`
	SHA256        string    `json:"sha256"`
	Bytes         int64     `json:"bytes"`
	URL           string    `json:"url"`
	URLExpiresAt  time.Time `json:"urlExpiresAt"`
	ExportExpires time.Time `json:"exportExpiresAt"`
}

// renderedFile is one format's file name, content type and renderer.
type renderedFile struct {
	format      privacyv1alpha1.ExportFormat
	name        string
	contentType string
	write       func(io.Writer) error
}

// destinationFiles renders each format straight into the upload, record by record from the
// spool, so that no file is ever whole in memory. Files are stored uncompressed, so that a browser
// opens them from the link.
func destinationFiles(doc *export.Document, formats []privacyv1alpha1.ExportFormat) []renderedFile {
	var out []renderedFile
	render := func(write func(io.Writer, *export.Document) error) func(io.Writer) error {
		return func(w io.Writer) error { return write(w, doc) }
	}
	for _, f := range formats {
		switch f {
		case privacyv1alpha1.ExportFormatJSON:
			out = append(out, renderedFile{f, "export.json", "application/json", render(export.WriteJSON)})
		case privacyv1alpha1.ExportFormatCSV:
			out = append(out, renderedFile{f, "export.csv.zip", "application/zip", render(export.WriteCSV)})
		case privacyv1alpha1.ExportFormatHTML:
			out = append(out, renderedFile{f, "report.html", "text/html; charset=utf-8", render(export.WriteHTML)})
		}
	}
	return out
}

// destinationTarget builds the request's folder in its destination bucket from the Secrets the
// destination names (labelled as connection Secrets, as for stores).
func (r *AccessRequestReconciler) destinationTarget(ctx context.Context, ar *privacyv1alpha1.AccessRequest) (*deliver.Target, error) {
	d := ar.Spec.Destination.S3
	creds, err := r.destinationSecret(ctx, ar.Namespace, &d.SecretRef, "credentials")
	if err != nil {
		return nil, err
	}
	cfg := deliver.Config{Destination: d, Credentials: creds, RequestUID: string(ar.UID)}
	if d.CASecretRef != nil {
		if cfg.CABundle, err = r.destinationSecret(ctx, ar.Namespace, d.CASecretRef, "CA bundle"); err != nil {
			return nil, err
		}
	}
	if r.Pool != nil {
		cfg.Egress = r.Pool.Egress
	}
	return deliver.New(cfg)
}

func (r *AccessRequestReconciler) destinationSecret(ctx context.Context, namespace string, ref *privacyv1alpha1.SecretKeySelector, what string) ([]byte, error) {
	secret, err := secretref.Get(ctx, r.APIReader, namespace, ref.Name, privacyv1alpha1.SecretTypeConnection)
	switch {
	case secretref.IsNotOptedIn(err):
		return nil, fmt.Errorf("the destination's %s %s", what, err.Error())
	case apierrors.IsNotFound(err):
		return nil, &missingSecretError{fmt.Sprintf("the destination's %s Secret %q was not found", what, ref.Name)}
	case err != nil:
		return nil, fmt.Errorf("reading the destination's %s Secret %q failed", what, ref.Name)
	}
	value := secret.Data[ref.Key]
	if len(value) == 0 {
		return nil, fmt.Errorf("the destination's %s Secret %q has no key %q", what, ref.Name, ref.Key)
	}
	return value, nil
}

// deliverToDestination uploads every file, then writes the export Secret with their digests,
// sizes and links. A failure before the Secret is written is retried: the files are uploaded
// again under the same names (on a versioned bucket the older versions go at expiry too).
func (r *AccessRequestReconciler) deliverToDestination(ctx context.Context, s *accessScope, doc *export.Document) (bool, error) {
	ar := s.request
	notDelivered := func(err error) (bool, error) {
		// Our own errors and deliver.Error quote no URL, link or Secret value.
		s.log.Info("Delivering the export to its destination failed", "error", err.Error())
		s.facts.blocked = &blockingFailure{privacyv1alpha1.ReasonExportNotDelivered, "delivering the export to its destination failed; retrying: " + err.Error()}
		s.effect.after(pendingPoll)
		return false, nil
	}
	target, err := r.destinationTarget(ctx, ar)
	if err != nil {
		return notDelivered(err)
	}
	defer target.Close()
	expires := s.now.Add(exportTTL(ar))
	manifest := destinationManifest{Bucket: target.Bucket, Prefix: target.Prefix}
	var files []privacyv1alpha1.ExportFile
	var total int64
	for _, f := range destinationFiles(doc, exportFormats(&ar.Spec)) {
		up, err := target.Upload(ctx, f.name, f.contentType, f.write)
		if err != nil {
			return notDelivered(err)
		}
		link, lifetime, err := target.Link(ctx, up.Object, expires.Sub(s.now))
		if err != nil {
			return notDelivered(err)
		}
		manifest.Files = append(manifest.Files, destinationEntry{Name: up.Name, Format: string(f.format), Object: up.Object,
			ContentType: up.ContentType, SHA256: up.SHA256, Bytes: up.Bytes, URL: link,
			URLExpiresAt: s.now.Add(lifetime).UTC(), ExportExpires: expires.UTC()})
		files = append(files, privacyv1alpha1.ExportFile{Format: f.format, Key: up.Name, SHA256: up.SHA256, Bytes: up.Bytes, Encoding: "identity"})
		total += up.Bytes
	}
	body, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return false, err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Namespace: ar.Namespace, Name: exportSecretName(ar),
		Labels: requests.RequestLabels(labelAccessRequest, ar.Name, string(ar.UID)),
	}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{destinationManifestKey: body}}
	if err := ctrl.SetControllerReference(ar, secret, r.Scheme()); err != nil {
		return false, err
	}
	if err := r.writeExportSecret(ctx, ar, secret); err != nil {
		s.log.Error(err, "Writing the export Secret")
		return notDelivered(errors.New("the export Secret could not be written"))
	}
	if err := s.deleteDerived(ctx); err != nil {
		s.log.Error(err, "Deleting the derived values")
	}
	first := files[0]
	ar.Status.Export = &privacyv1alpha1.ExportReference{SecretName: secret.Name, Key: first.Key, SHA256: first.SHA256,
		Bytes: first.Bytes, Encoding: first.Encoding, Files: files, ExpiresAt: ptrTime(expires),
		Delivery: &privacyv1alpha1.DeliveryStatus{Bucket: target.Bucket, Prefix: target.Prefix}}
	ar.Status.Phase = privacyv1alpha1.PhaseCompleted
	ar.Status.CompletionTime = ptrTime(s.now)
	s.effect.at(expires)
	s.effect.normal(privacyv1alpha1.ReasonExportDelivered, "Deliver", fmt.Sprintf(
		"export of %d records from %d stores delivered to bucket %s (%d files, %d bytes); digests and links in Secret %s",
		doc.RecordCount, len(doc.Stores), target.Bucket, len(files), total, secret.Name))
	return true, nil
}

// expireDestination deletes every version of the export's files and lists the folder again. It
// returns true once nothing is left; a failure is recorded in status.export.delivery and retried
// with backoff.
func (r *AccessRequestReconciler) expireDestination(ctx context.Context, s *accessScope) bool {
	ar := s.request
	del := ar.Status.Export.Delivery
	if del.NextAttemptAt != nil && s.now.Before(del.NextAttemptAt.Time) {
		s.effect.at(del.NextAttemptAt.Time)
		return false
	}
	failed := func(err error, transient bool) bool {
		del.Attempts++
		del.Message = err.Error()
		del.NextAttemptAt = ptrTime(requests.NextAttempt(s.now, del.Attempts, transient))
		s.effect.at(del.NextAttemptAt.Time)
		if del.Attempts == 1 {
			s.effect.warn(reasonExpiryRetrying, "Expire", "deleting the export from bucket "+del.Bucket+" failed; retrying: "+err.Error())
		}
		s.log.Info("Deleting the export from its destination failed", "attempts", del.Attempts, "error", err.Error())
		return false
	}
	if ar.Spec.Destination == nil || ar.Spec.Destination.S3 == nil {
		return failed(errors.New("spec.destination.s3 is gone"), false)
	}
	target, err := r.destinationTarget(ctx, ar)
	if err != nil {
		return failed(err, false)
	}
	defer target.Close()
	res, err := target.Expire(ctx)
	if res != nil {
		del.Removed += res.Removed
	}
	if err != nil {
		return failed(err, deliver.IsTransient(err))
	}
	del.Remaining = res.Remaining
	if res.Remaining > 0 {
		return failed(fmt.Errorf("%d object versions are still under the export's prefix after the deletion", res.Remaining), true)
	}
	del.Attempts, del.NextAttemptAt, del.Message = 0, nil, ""
	del.VerifiedAt = ptrTime(s.now)
	return true
}

// missingSecretError is a destination Secret that does not exist (any more).
type missingSecretError struct{ msg string }

func (e *missingSecretError) Error() string { return e.msg }

func exportTTL(ar *privacyv1alpha1.AccessRequest) time.Duration {
	if ar.Spec.TTL != nil && ar.Spec.TTL.Duration > 0 {
		return ar.Spec.TTL.Duration
	}
	return defaultExportTTL
}
