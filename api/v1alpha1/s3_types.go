package v1alpha1

// StoreTypeS3 is an S3-compatible object store (AWS S3, MinIO, Ceph RGW, versitygw, ...).
const StoreTypeS3 StoreType = "s3"

// ObjectAction says what happens to a subject's objects.
// +kubebuilder:validation:Enum=delete;retain
type ObjectAction string

const (
	// ObjectActionDelete deletes the objects, every version of them on a versioned bucket.
	ObjectActionDelete ObjectAction = "delete"
	// ObjectActionRetain keeps the objects under a legal ground (retainReason).
	ObjectActionRetain ObjectAction = "retain"
)

// ObjectMapping says which objects of an s3 store hold a subject's data and what to do with them.
// +kubebuilder:validation:XValidation:rule="self.action != 'retain' || (has(self.retainReason) && size(self.retainReason) > 0)",message="retainReason is required when action is retain",fieldPath=".retainReason"
type ObjectMapping struct {
	// Bucket holding the objects: 3 to 63 lower-case letters, digits, dots and dashes.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`
	// +kubebuilder:validation:XValidation:rule="!self.contains('..')",message="a bucket name has no two adjacent dots"
	Bucket string `json:"bucket"`
	// Key of the object with {identifier} placeholders, e.g. "avatars/{userId}.png"; a key ending
	// in "/" means every object under that prefix, e.g. "users/{customerId}/". Each placeholder
	// is replaced by the subject's value as it is; a value that would change the key's structure
	// (it holds "/" or a control character, or is "." or "..") is refused, never widened.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^([^{}\x00-\x1f]|\{[A-Za-z][A-Za-z0-9_.-]*\})*\{[A-Za-z][A-Za-z0-9_.-]*\}([^{}\x00-\x1f]|\{[A-Za-z][A-Za-z0-9_.-]*\})*$`
	Key string `json:"key"`
	// Action: delete the objects, or retain them under a legal ground.
	Action ObjectAction `json:"action"`
	// RetainReason is the legal ground for keeping the objects.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	RetainReason string `json:"retainReason,omitempty"`
}
