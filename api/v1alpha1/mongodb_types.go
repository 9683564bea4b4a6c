package v1alpha1

// StoreTypeMongoDB is a MongoDB deployment (or a server speaking its wire protocol), mapped with
// spec.collections.
const StoreTypeMongoDB StoreType = "mongodb"

// FieldMatch selects the documents whose field equals one of the subject's identifiers. A field
// holding an array matches when any element does.
type FieldMatch struct {
	// Field is a dotted path into the document, e.g. "email" or "profile.phone".
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`
	Field string `json:"field"`
	// Identifier is the name of the subject's identifier: a key of the identifiers Secret or an
	// identifier some mapping provides (customerId).
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_.-]*$`
	Identifier string `json:"identifier"`
	// As says how the field's values compare with the identifier, as for a table column: email,
	// phone or exact. Unset: by the identifier's name.
	// +optional
	As MatchKind `json:"as,omitempty"`
}

// FieldProvide says that a field of the subject's documents holds a further identifier of the
// subject (a derived identifier), e.g. _id as customerId.
type FieldProvide struct {
	// Identifier is the name the derived values go by.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_.-]*$`
	Identifier string `json:"identifier"`
	// Field is a dotted path whose values, in the documents this mapping matches, are the
	// identifier's values.
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`
	Field string `json:"field"`
}

// FieldMask rewrites one field of the subject's documents.
type FieldMask struct {
	// Field is a dotted path to rewrite; it must not be _id (MongoDB never changes a document's
	// _id).
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`
	Field string `json:"field"`
	// Strategy: nullify (null), redact (the marker "[REDACTED]") or hash (salted SHA-256, hex).
	Strategy MaskStrategy `json:"strategy"`
}

// CollectionMapping says where a subject's documents are in one collection and what to do with
// them. A collection may be listed more than once; when several mappings match one document,
// retain beats delete and delete beats mask.
// +kubebuilder:validation:XValidation:rule="self.action != 'retain' || (has(self.retainReason) && size(self.retainReason) > 0)",message="retainReason is required when action is retain",fieldPath=".retainReason"
// +kubebuilder:validation:XValidation:rule="self.action != 'mask' || (has(self.mask) && size(self.mask) > 0)",message="mask is required when action is mask",fieldPath=".mask"
// +kubebuilder:validation:XValidation:rule="self.action == 'mask' || !has(self.mask) || size(self.mask) == 0",message="mask is only allowed when action is mask",fieldPath=".mask"
type CollectionMapping struct {
	// Name is <database>.<collection>; the collection name may itself hold dots.
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+\.[A-Za-z_][A-Za-z0-9_.-]*$`
	Name string `json:"name"`
	// Match lists the fields that identify the subject; a document matches when any of them
	// equals the subject's identifier of that name.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Match []FieldMatch `json:"match"`
	// Provides lists fields of the matched documents that hold further identifiers of the subject.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Provides []FieldProvide `json:"provides,omitempty"`
	// Action: delete the documents, mask fields of them, or retain them under a legal hold.
	Action TableAction `json:"action"`
	// Mask lists the fields rewritten when action is mask.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Mask []FieldMask `json:"mask,omitempty"`
	// RetainReason is the legal ground for keeping the documents (GDPR Art. 17(3)).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	RetainReason string `json:"retainReason,omitempty"`
}
