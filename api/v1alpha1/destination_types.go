package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ExportDestination is where an access export's files go instead of the export Secret.
type ExportDestination struct {
	// S3 sends the files to a bucket of an S3-compatible object store.
	S3 *S3Destination `json:"s3"`
}

// S3Destination is a bucket of an S3-compatible object store that receives the export files under
// <prefix>/<request uid>/<file>. The export Secret then holds, per file, its digest, size and a
// presigned download link that expires with the export; at the TTL every version of the files is
// deleted.
type S3Destination struct {
	// URL of the endpoint, addressed path-style, e.g. https://s3.eu-west-1.amazonaws.com. The
	// download links point at it, so it must be reachable by the person (or the portal) too.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	URL string `json:"url"`
	// Bucket receiving the files: 3 to 63 lower-case letters, digits, dots and dashes.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`
	// +kubebuilder:validation:XValidation:rule="!self.contains('..')",message="a bucket name has no two adjacent dots"
	Bucket string `json:"bucket"`
	// Prefix of the object keys, e.g. "exports"; the files go under <prefix>/<request uid>/.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[^\x00-\x1f\\]*$`
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(s, s == '..' || s == '.')",message="prefix must not hold a '.' or '..' segment"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="prefix must not start with '/'"
	Prefix string `json:"prefix,omitempty"`
	// SecretRef holds "<accessKeyId>:<secretAccessKey>", in a Secret labelled
	// privacy.dsr.dev/secret-type=connection (as for stores). The download links are signed with it.
	SecretRef SecretKeySelector `json:"secretRef"`
	// CASecretRef holds a PEM CA bundle that the endpoint's TLS certificate must chain to.
	// +optional
	CASecretRef *SecretKeySelector `json:"caSecretRef,omitempty"`
	// AllowInsecureHTTP lets the destination use a plain http:// URL, on which the export crosses
	// the network unencrypted (as spec.connection.allowInsecureHTTP of an s3 store).
	// +optional
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`
}

// DeliveryStatus is what happened to an export sent to a destination.
type DeliveryStatus struct {
	// Bucket and Prefix the files were uploaded under (<spec prefix>/<request uid>/).
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
	// Removed counts the object versions (delete markers included) deleted at expiry.
	// +optional
	Removed int64 `json:"removed,omitempty"`
	// Remaining counts the versions a listing after the deletion still found under the prefix.
	// +optional
	Remaining int64 `json:"remaining,omitempty"`
	// Attempts made at the current step (delivery or expiry) that failed.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// NextAttemptAt is when a failed step is tried again.
	// +optional
	NextAttemptAt *metav1.Time `json:"nextAttemptAt,omitempty"`
	// Message explains the last failure; it never holds a link or a credential.
	// +optional
	Message string `json:"message,omitempty"`
	// VerifiedAt is when a listing found nothing left under the prefix after expiry.
	// +optional
	VerifiedAt *metav1.Time `json:"verifiedAt,omitempty"`
}
