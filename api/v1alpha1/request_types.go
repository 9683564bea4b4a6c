package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Regulation is the law a request is made under; it sets the deadline.
// +kubebuilder:validation:Enum=GDPR;UK-GDPR;CCPA;CPRA;LGPD;PIPEDA
type Regulation string

const (
	RegulationGDPR   Regulation = "GDPR"
	RegulationUKGDPR Regulation = "UK-GDPR"
	RegulationCCPA   Regulation = "CCPA"
	RegulationCPRA   Regulation = "CPRA"
	RegulationLGPD   Regulation = "LGPD"
	RegulationPIPEDA Regulation = "PIPEDA"
)

// LocalObjectReference names an object in the request's namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// Subject says who the request is about.
type Subject struct {
	// IdentifiersSecretRef names a Secret in the request's namespace whose keys are identifier names
	// (email, userId, phone, or custom names used by the stores' mappings) and whose values are the
	// subject's identifiers. The identifiers never leave that Secret: status and receipts carry a
	// salted digest of them.
	IdentifiersSecretRef LocalObjectReference `json:"identifiersSecretRef"`
}

// Verification says how long and how often an erasure is checked again.
type Verification struct {
	// ReverifyInterval is the time between two verifications after completion.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('720h')",message="reverifyInterval must be between 1s and 720h"
	ReverifyInterval *metav1.Duration `json:"reverifyInterval,omitempty"`
	// ReverifyPeriod is how long after completion verifications go on; 0s verifies once.
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('8760h')",message="reverifyPeriod must be between 0s and 8760h"
	ReverifyPeriod *metav1.Duration `json:"reverifyPeriod,omitempty"`
	// ReErase erases data that reappears during the period again, and records that it did.
	// +optional
	ReErase bool `json:"reErase,omitempty"`
	// Deep also searches every text-like column of the mapped tables for the identifiers,
	// catching copies outside the mapped columns.
	// +optional
	Deep bool `json:"deep,omitempty"`
	// KeepIdentifiersSecret keeps the identifiers Secret after the period. By default it is deleted
	// so that the operator does not keep the very data it was asked to forget.
	// +optional
	KeepIdentifiersSecret bool `json:"keepIdentifiersSecret,omitempty"`
}

// RequestPhase is where a request is in its life.
// +kubebuilder:validation:Enum=Pending;Erasing;Verifying;Collecting;Completed;Reappeared;Failed;Expired
type RequestPhase string

const (
	PhasePending    RequestPhase = "Pending"
	PhaseErasing    RequestPhase = "Erasing"
	PhaseVerifying  RequestPhase = "Verifying"
	PhaseCollecting RequestPhase = "Collecting"
	PhaseCompleted  RequestPhase = "Completed"
	PhaseReappeared RequestPhase = "Reappeared"
	PhaseFailed     RequestPhase = "Failed"
	PhaseExpired    RequestPhase = "Expired"
)

// StorePhase is where one store is in a request.
// +kubebuilder:validation:Enum=Pending;Erasing;Erased;Verified;Collected;Retrying;Failed;Reappeared;DryRun
type StorePhase string

const (
	StorePending    StorePhase = "Pending"
	StoreErasing    StorePhase = "Erasing"
	StoreErased     StorePhase = "Erased"
	StoreVerified   StorePhase = "Verified"
	StoreCollected  StorePhase = "Collected"
	StoreRetrying   StorePhase = "Retrying"
	StoreFailed     StorePhase = "Failed"
	StoreReappeared StorePhase = "Reappeared"
	StoreDryRun     StorePhase = "DryRun"
)

// StoreKind tells a DataStore from a ClusterDataStore in a request's status.
// +kubebuilder:validation:Enum=DataStore;ClusterDataStore
type StoreKind string

const (
	KindDataStore        StoreKind = "DataStore"
	KindClusterDataStore StoreKind = "ClusterDataStore"
)

// RetainedLocation is data kept on purpose, with its legal ground.
type RetainedLocation struct {
	// Location is the table or key pattern.
	Location string `json:"location"`
	// Records kept there.
	Records int64 `json:"records"`
	// Reason given by the store's mapping.
	Reason string `json:"reason"`
}

// RequestSpecCommon is shared by DeletionRequest and AccessRequest.
type RequestSpecCommon struct {
	// Subject of the request.
	Subject Subject `json:"subject"`
	// Regulation the request is made under; it sets the deadline.
	Regulation Regulation `json:"regulation"`
	// ReceivedAt is when the person made the request, if before this object was created (a portal
	// sets it); the deadline counts from it. Defaults to the creation time.
	// +optional
	ReceivedAt *metav1.Time `json:"receivedAt,omitempty"`
	// StoreSelector narrows the stores used to those whose labels match. Default: every DataStore
	// in the namespace and every ClusterDataStore that admits the namespace.
	// +optional
	StoreSelector *metav1.LabelSelector `json:"storeSelector,omitempty"`
}

// RequestStatusCommon is shared by DeletionRequest and AccessRequest.
type RequestStatusCommon struct {
	// Phase of the request.
	// +optional
	Phase RequestPhase `json:"phase,omitempty"`
	// ObservedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// SubjectDigest is the salted SHA-256 of the subject's identifiers ("sha256:<hex>").
	// +optional
	SubjectDigest string `json:"subjectDigest,omitempty"`
	// ReceivedAt is when the deadline started to run.
	// +optional
	ReceivedAt *metav1.Time `json:"receivedAt,omitempty"`
	// Deadline set by the regulation.
	// +optional
	Deadline *metav1.Time `json:"deadline,omitempty"`
	// CompletionTime is when the request was first completed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Conditions of the request.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DeletionRequestSpec asks for everything held about a subject to be erased (GDPR Art. 17).
type DeletionRequestSpec struct {
	RequestSpecCommon `json:",inline"`
	// Verification after completion.
	// +optional
	// +kubebuilder:default={}
	Verification *Verification `json:"verification,omitempty"`
	// DryRun reports what each store would erase, mask and retain, and changes nothing.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
}

// StoreProgress is what every request kind records about one store: which store, where it is,
// and how its current step is retried. Both kinds embed it inline, so their wire format keeps these
// fields at the top level of each store's entry.
type StoreProgress struct {
	// Name of the store.
	Name string `json:"name"`
	// Kind of the store.
	Kind StoreKind `json:"kind"`
	// Type of the store.
	// +optional
	Type StoreType `json:"type,omitempty"`
	// Phase of this store.
	Phase StorePhase `json:"phase"`
	// Attempts made at the current step; reset when the store moves to its next step.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// NextAttemptAt is when the store is tried again (after a failure, or to poll a store that
	// works asynchronously).
	// +optional
	NextAttemptAt *metav1.Time `json:"nextAttemptAt,omitempty"`
	// Message explains the phase; it never holds an identifier.
	// +optional
	Message string `json:"message,omitempty"`
	// Derived lists the identifiers this store's mapping derived at acceptance (linked data) and
	// how many values of each: the values themselves are kept only in the request's
	// <request>-derived Secret.
	// +optional
	// +listType=atomic
	Derived []DerivedIdentifier `json:"derived,omitempty"`
}

// DerivedIdentifier counts the values of one derived identifier a store provided; it never holds
// a value.
type DerivedIdentifier struct {
	// Identifier is the name the values go by, e.g. customerId.
	Identifier string `json:"identifier"`
	// Values derived that are the subject's alone: they select rows, keys or records to erase.
	Values int32 `json:"values"`
	// Shared values are also held by rows that are not the subject's (an address another customer
	// lives at): a record reached only through them is never changed.
	// +optional
	Shared int32 `json:"shared,omitempty"`
}

// LocationRecords counts records at one location (a table, table.column or key pattern).
type LocationRecords struct {
	// Location is the table, column or key pattern; never a value.
	Location string `json:"location"`
	// Records there.
	Records int64 `json:"records"`
}

// ReasonUnmappedData is the reason of the Warning event a deep verification raises when it finds
// copies of the subject's identifiers outside the mapping.
const ReasonUnmappedData = "UnmappedData"

// DeletionStoreStatus is one store's part of a deletion.
type DeletionStoreStatus struct {
	StoreProgress `json:",inline"`
	// Planned is what the store held of the subject when erasure started: the figures reported
	// even if the operator restarts after the store committed its erasure.
	// +optional
	Planned *EraseCounts `json:"planned,omitempty"`
	// Erased records (rows or keys deleted).
	Erased int64 `json:"erased"`
	// Masked records (rows whose identifying columns were rewritten).
	Masked int64 `json:"masked"`
	// Retained records, kept on purpose; see retainedReasons.
	Retained int64 `json:"retained"`
	// Remaining records that still identify the subject at the last verification.
	Remaining int64 `json:"remaining"`
	// RetainedReasons lists where records were retained and why.
	// +optional
	// +listType=atomic
	RetainedReasons []RetainedLocation `json:"retainedReasons,omitempty"`
	// Shared records are reached only through a derived value that also belongs to someone else
	// (another customer's order shipped to the same address): left untouched, never counted as
	// remaining.
	// +optional
	Shared int64 `json:"shared,omitempty"`
	// SharedLocations lists where the shared records are.
	// +optional
	// +listType=atomic
	SharedLocations []LocationRecords `json:"sharedLocations,omitempty"`
	// Unmapped records are copies of the subject's identifier values that the last deep
	// verification found outside the mapping (spec.verification.deep): findings for a human to
	// map or erase, not remaining records.
	// +optional
	Unmapped int64 `json:"unmapped,omitempty"`
	// UnmappedLocations lists where, by table and column.
	// +optional
	// +listType=atomic
	UnmappedLocations []LocationRecords `json:"unmappedLocations,omitempty"`
	// ReErasures counts how often reappeared data was erased again.
	// +optional
	ReErasures int32 `json:"reErasures,omitempty"`
	// VerifiedAt is when the store was last verified.
	// +optional
	VerifiedAt *metav1.Time `json:"verifiedAt,omitempty"`
}

// EraseCounts are the figures of one erasure.
type EraseCounts struct {
	Erased   int64 `json:"erased"`
	Masked   int64 `json:"masked"`
	Retained int64 `json:"retained"`
}

// ReceiptReference points at the signed receipt of a deletion.
type ReceiptReference struct {
	// ConfigMapName holds the receipt (key receipt.json) and its signature (key receipt.sig).
	ConfigMapName string `json:"configMapName"`
	// SHA256 of receipt.json, as "sha256:<hex>".
	SHA256 string `json:"sha256"`
	// Signature is the base64 Ed25519 signature of receipt.json.
	Signature string `json:"signature"`
	// KeyID identifies the public key that verifies the signature (hex SHA-256 of it, first 16 characters).
	KeyID string `json:"keyID"`
	// IssuedAt is when the receipt was signed.
	IssuedAt metav1.Time `json:"issuedAt"`
}

// VerificationStatus tracks verification after completion.
type VerificationStatus struct {
	// LastVerifiedAt is when every store was last verified.
	// +optional
	LastVerifiedAt *metav1.Time `json:"lastVerifiedAt,omitempty"`
	// NextVerificationAt is when the stores will be verified again.
	// +optional
	NextVerificationAt *metav1.Time `json:"nextVerificationAt,omitempty"`
	// VerifyUntil is the end of the re-verification period.
	// +optional
	VerifyUntil *metav1.Time `json:"verifyUntil,omitempty"`
	// Verifications made so far.
	// +optional
	Verifications int32 `json:"verifications,omitempty"`
	// Reappearances found so far.
	// +optional
	Reappearances int32 `json:"reappearances,omitempty"`
	// IdentifiersSecretDeleted is true once the identifiers Secret was deleted after the period.
	// +optional
	IdentifiersSecretDeleted bool `json:"identifiersSecretDeleted,omitempty"`
}

// DeletionRequestStatus is what the operator did about a DeletionRequest.
type DeletionRequestStatus struct {
	RequestStatusCommon `json:",inline"`
	// StoreCount is the number of stores the request uses.
	// +optional
	StoreCount int32 `json:"storeCount,omitempty"`
	// Stores lists each store's part.
	// +optional
	// +listType=atomic
	Stores []DeletionStoreStatus `json:"stores,omitempty"`
	// Receipt is the signed receipt, once completed.
	// +optional
	Receipt *ReceiptReference `json:"receipt,omitempty"`
	// Verification after completion.
	// +optional
	Verification *VerificationStatus `json:"verification,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dr;delreq,categories=dsr
// +kubebuilder:validation:XValidation:rule="self.spec == oldSelf.spec",message="spec is immutable: create a new request instead"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Verified",type=string,JSONPath=`.status.conditions[?(@.type=="Verified")].status`
// +kubebuilder:printcolumn:name="Stores",type=integer,JSONPath=`.status.storeCount`
// +kubebuilder:printcolumn:name="Regulation",type=string,JSONPath=`.spec.regulation`
// +kubebuilder:printcolumn:name="Deadline",type=string,format=date-time,JSONPath=`.status.deadline`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DeletionRequest asks for everything held about one person to be erased, and proves that it was.
type DeletionRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DeletionRequestSpec   `json:"spec,omitempty"`
	Status DeletionRequestStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// DeletionRequestList is a list of DeletionRequests.
type DeletionRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DeletionRequest `json:"items"`
}

// ExportFormat is the format of an access export.
// +kubebuilder:validation:Enum=json;csv;html
type ExportFormat string

const (
	// ExportFormatJSON is the machine-readable document (Art. 20).
	ExportFormatJSON ExportFormat = "json"
	// ExportFormatCSV is a zip of one CSV file per location.
	ExportFormatCSV ExportFormat = "csv"
	// ExportFormatHTML is a self-contained page that reads as a letter to the person.
	ExportFormatHTML ExportFormat = "html"
)

// AccessRequestSpec asks for a copy of everything held about a subject (GDPR Art. 15 and 20).
type AccessRequestSpec struct {
	RequestSpecCommon `json:",inline"`
	// Format of the export when formats is unset (kept for compatibility: use formats).
	// +optional
	// +kubebuilder:default=json
	Format ExportFormat `json:"format,omitempty"`
	// Formats delivered, each as its own key of the export Secret: any of json, csv and html.
	// Unset: format alone.
	// +optional
	// +kubebuilder:validation:MaxItems=3
	// +listType=set
	Formats []ExportFormat `json:"formats,omitempty"`
	// TTL is how long the export is kept after it is delivered; then it is deleted.
	// +optional
	// +kubebuilder:default="168h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('2160h')",message="ttl must be between 1s and 2160h"
	TTL *metav1.Duration `json:"ttl,omitempty"`
	// Destination sends the export files to an object store instead of the export Secret.
	// +optional
	Destination *ExportDestination `json:"destination,omitempty"`
}

// AccessStoreStatus is one store's part of an access request.
type AccessStoreStatus struct {
	StoreProgress `json:",inline"`
	// Records found.
	Records int64 `json:"records"`
	// CollectedAt is when the records were collected.
	// +optional
	CollectedAt *metav1.Time `json:"collectedAt,omitempty"`
}

// ExportReference points at a delivered export.
type ExportReference struct {
	// SecretName of the Secret that holds the export.
	SecretName string `json:"secretName"`
	// Key within the Secret (export.json, or export.json.gz when compressed).
	Key string `json:"key"`
	// SHA256 of the exact bytes stored under the key, as "sha256:<hex>".
	SHA256 string `json:"sha256"`
	// Bytes stored under the key.
	Bytes int64 `json:"bytes"`
	// Encoding of the stored bytes: identity or gzip.
	Encoding string `json:"encoding"`
	// Files lists every file delivered, one key of the Secret each; key, sha256, bytes and
	// encoding above describe the first of them (the JSON document when it was asked for).
	// +optional
	// +listType=atomic
	Files []ExportFile `json:"files,omitempty"`
	// ExpiresAt is when the export is deleted.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// Delivery is the upload to spec.destination and its deletion at expiry.
	// +optional
	Delivery *DeliveryStatus `json:"delivery,omitempty"`
}

// AccessRequestStatus is what the operator did about an AccessRequest.
type AccessRequestStatus struct {
	RequestStatusCommon `json:",inline"`
	// Stores lists each store's part.
	// +optional
	// +listType=atomic
	Stores []AccessStoreStatus `json:"stores,omitempty"`
	// Export is the delivered export.
	// +optional
	Export *ExportReference `json:"export,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ar;accreq,categories=dsr
// +kubebuilder:validation:XValidation:rule="self.spec == oldSelf.spec",message="spec is immutable: create a new request instead"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Regulation",type=string,JSONPath=`.spec.regulation`
// +kubebuilder:printcolumn:name="Export",type=string,JSONPath=`.status.export.secretName`
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.status.export.expiresAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// AccessRequest asks for a copy of everything held about one person.
type AccessRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AccessRequestSpec   `json:"spec,omitempty"`
	Status AccessRequestStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AccessRequestList is a list of AccessRequests.
type AccessRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AccessRequest `json:"items"`
}

// IsFinished reports whether the operator is done working towards the request's outcome: erased
// and verified (re-verification may still run), reappeared after that, or failed for good. The
// deadline and the overdue count end here.
func (r *DeletionRequest) IsFinished() bool {
	switch r.Status.Phase {
	case PhaseCompleted, PhaseReappeared, PhaseFailed:
		return true
	}
	return false
}

// IsFinished reports whether the operator is done working towards the request's outcome: the
// export delivered (or since expired), or failed for good.
func (r *AccessRequest) IsFinished() bool {
	switch r.Status.Phase {
	case PhaseCompleted, PhaseExpired, PhaseFailed:
		return true
	}
	return false
}

func init() {
	register(&DeletionRequest{}, &DeletionRequestList{}, &AccessRequest{}, &AccessRequestList{})
}
