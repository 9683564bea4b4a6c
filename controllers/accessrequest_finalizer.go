package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// finalizerExportDestination holds a request with spec.destination until its files are gone from
// the bucket: deleting the request deletes the export Secret (and so the links) through its owner
// reference, but nothing else would ever delete the objects.
const finalizerExportDestination = "privacy.dsr.dev/export-destination"

// reasonExportNotDeleted: a request with a destination was deleted without its files, whose
// credentials were gone.
const reasonExportNotDeleted = "ExportNotDeleted"

// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=accessrequests,verbs=patch

// guardDestination keeps the finalizer of a request with a destination while its files may be in
// the bucket. A request being deleted, or failed, has its folder emptied first (anything an
// interrupted delivery uploaded goes too); an expired one has been emptied already. It returns
// true when the reconcile ends here.
func (r *AccessRequestReconciler) guardDestination(ctx context.Context, ar *privacyv1alpha1.AccessRequest) (bool, error) {
	has := controllerutil.ContainsFinalizer(ar, finalizerExportDestination)
	switch {
	case !ar.DeletionTimestamp.IsZero() || (has && ar.Status.Phase == privacyv1alpha1.PhaseFailed):
		if !has {
			return true, nil
		}
		if ar.Status.Phase != privacyv1alpha1.PhaseExpired && ar.Spec.Destination != nil && ar.Spec.Destination.S3 != nil {
			target, err := r.destinationTarget(ctx, ar)
			var missing *missingSecretError
			switch {
			case errors.As(err, &missing) && !ar.DeletionTimestamp.IsZero():
				// Its namespace is being deleted, or someone deleted the credentials: waiting would
				// hold the request (and the namespace) for ever. The bucket's lifecycle rule is
				// the backstop (docs/portal-guide.md).
				log.FromContext(ctx).Info("Deleting a request whose export files cannot be deleted: the destination's credentials are gone",
					"bucket", ar.Spec.Destination.S3.Bucket)
				if r.Recorder != nil {
					r.Recorder.Eventf(ar, nil, corev1.EventTypeWarning, reasonExportNotDeleted, "Delete", "%s",
						"the request was deleted but its files could not be deleted from bucket "+ar.Spec.Destination.S3.Bucket+": "+err.Error())
				}
				return true, r.patchFinalizer(ctx, ar, false)
			case err != nil:
				return true, fmt.Errorf("emptying the export's folder in its destination: %w", err)
			}
			defer target.Close()
			if _, err := target.Expire(ctx); err != nil {
				// Returned: the controller retries with its backoff; the error quotes no link.
				return true, err
			}
		}
		return !ar.DeletionTimestamp.IsZero(), r.patchFinalizer(ctx, ar, false)
	case has && ar.Status.Phase == privacyv1alpha1.PhaseExpired:
		return false, r.patchFinalizer(ctx, ar, false)
	case !has && ar.Spec.Destination != nil && ar.Spec.Destination.S3 != nil && ar.Status.Phase != privacyv1alpha1.PhaseExpired:
		return false, r.patchFinalizer(ctx, ar, true)
	}
	return false, nil
}

// patchFinalizer adds or removes the finalizer; ar is updated in place, so that the status patch
// of the same reconcile starts from the new version.
func (r *AccessRequestReconciler) patchFinalizer(ctx context.Context, ar *privacyv1alpha1.AccessRequest, add bool) error {
	base := ar.DeepCopy()
	if add {
		controllerutil.AddFinalizer(ar, finalizerExportDestination)
	} else {
		controllerutil.RemoveFinalizer(ar, finalizerExportDestination)
	}
	return client.IgnoreNotFound(r.Patch(ctx, ar, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})))
}
