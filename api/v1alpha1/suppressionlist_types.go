package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SuppressionAction says what a sweep does with the data it finds of someone on the list.
// +kubebuilder:validation:Enum=erase;report;optOut
type SuppressionAction string

const (
	// SuppressionErase erases what a sweep finds through each store's mapping (retain rules and
	// linked rows included), verifies and counts it.
	SuppressionErase SuppressionAction = "erase"
	// SuppressionReport only counts what a sweep finds; nothing is changed.
	SuppressionReport SuppressionAction = "report"
	// SuppressionOptOut is for stores in which the broker records only an opt-out (DROP lists
	// only): what a sweep finds is left in place and counted (matched), its DROP items get status
	// 4 (opted out), and it does not raise DataReappeared: the data is there on purpose.
	SuppressionOptOut SuppressionAction = "optOut"
)

// DeletionRequestsSource feeds a list from the namespace's DeletionRequests. It has no fields yet.
type DeletionRequestsSource struct{}

// SuppressionSource says where a list's entries come from: exactly one of its fields is set.
// +kubebuilder:validation:XValidation:rule="has(self.deletionRequests) != has(self.dropSecretRef)",message="set exactly one of deletionRequests and dropSecretRef"
type SuppressionSource struct {
	// DeletionRequests: every DeletionRequest of the namespace whose re-verification period ends
	// adds its subject (identifiers and derived identifiers) as keyed hashes (HMAC-SHA-256 with the
	// installation's suppression key) before its identifiers Secret is deleted.
	// +optional
	DeletionRequests *DeletionRequestsSource `json:"deletionRequests,omitempty"`
	// DropSecretRef names a Secret of the list's namespace, labelled
	// privacy.dsr.dev/secret-type=suppression-list, that holds a download of California's DROP
	// platform: keys email.csv, phone.csv (rows ID,Hash, Hash the base64 SHA-256 of the normalised
	// identifier) and optionally withdrawn.csv (rows ID). Each new content is applied on top of
	// what earlier downloads added (docs/suppression.md).
	// +optional
	DropSecretRef *LocalObjectReference `json:"dropSecretRef,omitempty"`
}

// SuppressionListSpec is a set of hashed identifiers that must not be found in the stores again,
// and the schedule that sweeps the stores for them.
// +kubebuilder:validation:XValidation:rule="!has(self.action) || self.action != 'optOut' || has(self.source.dropSecretRef)",message="action optOut needs a dropSecretRef source: opted out (4) is a DROP status"
type SuppressionListSpec struct {
	// Source of the entries.
	Source SuppressionSource `json:"source"`
	// SweepInterval is the time between two sweeps: from 10s (tests and demos) to 1080h (45 days,
	// the longest interval the California Delete Act allows).
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s') && duration(self) <= duration('1080h')",message="sweepInterval must be between 10s and 1080h (45 days)"
	SweepInterval *metav1.Duration `json:"sweepInterval,omitempty"`
	// StoreSelector narrows the stores swept to those whose labels match. Default: every DataStore
	// in the namespace and every ClusterDataStore that admits the namespace.
	// +optional
	StoreSelector *metav1.LabelSelector `json:"storeSelector,omitempty"`
	// Action: report (default) only counts what a sweep finds; erase applies each store's mapping
	// to it; optOut (DROP lists only), for stores in which the broker records only an opt-out,
	// leaves what it finds in place and reports its DROP items as opted out (4). Report is the
	// default so that a list never changes a store before someone has seen what it would match.
	// +optional
	// +kubebuilder:default=report
	Action SuppressionAction `json:"action,omitempty"`
}

// SuppressionStoreStatus is one store's part of the last sweep.
type SuppressionStoreStatus struct {
	// Name of the store.
	Name string `json:"name"`
	// Kind of the store.
	Kind StoreKind `json:"kind"`
	// Type of the store.
	// +optional
	Type StoreType `json:"type,omitempty"`
	// Scanned values of identifier columns and keys.
	Scanned int64 `json:"scanned"`
	// Matched records whose identifier is on the list.
	Matched int64 `json:"matched"`
	// Erased records (deleted or masked) by the sweep.
	Erased int64 `json:"erased"`
	// Retained records of listed people, kept on purpose by the store's mapping.
	Retained int64 `json:"retained"`
	// Supported is false when the store cannot be swept (it offers no sweep capability).
	Supported bool `json:"supported"`
	// Message explains a failure; it never holds an identifier.
	// +optional
	Message string `json:"message,omitempty"`
}

// SuppressionListStatus is what the operator holds and found for a SuppressionList.
type SuppressionListStatus struct {
	// ObservedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Entries held (hashed identifiers; for a DROP source, list items).
	// +optional
	Entries int64 `json:"entries"`
	// SourceDigest is the SHA-256 of the DROP download last applied ("sha256:<hex>").
	// +optional
	SourceDigest string `json:"sourceDigest,omitempty"`
	// LastSweepTime is when the last sweep ended.
	// +optional
	LastSweepTime *metav1.Time `json:"lastSweepTime,omitempty"`
	// NextSweepTime is when the next sweep starts.
	// +optional
	NextSweepTime *metav1.Time `json:"nextSweepTime,omitempty"`
	// Sweeps made so far.
	// +optional
	Sweeps int64 `json:"sweeps,omitempty"`
	// Stores lists each store's part of the last sweep.
	// +optional
	// +listType=atomic
	Stores []SuppressionStoreStatus `json:"stores,omitempty"`
	// ReportSecretName is the first Secret of the per-item DROP status report: key report.csv, or
	// for a report split into parts, key report-index.json naming them (docs/suppression.md).
	// +optional
	ReportSecretName string `json:"reportSecretName,omitempty"`
	// Conditions: Ready, DataReappeared.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=supl,categories=dsr
// +kubebuilder:printcolumn:name="Entries",type=integer,JSONPath=`.status.entries`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reappeared",type=string,JSONPath=`.status.conditions[?(@.type=="DataReappeared")].status`
// +kubebuilder:printcolumn:name="Last Sweep",type=date,JSONPath=`.status.lastSweepTime`
// +kubebuilder:printcolumn:name="Next Sweep",type=string,format=date-time,JSONPath=`.status.nextSweepTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// SuppressionList is a set of hashed identifiers of people who must stay erased, and the sweeps
// that keep them erased (docs/suppression.md).
type SuppressionList struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SuppressionListSpec   `json:"spec,omitempty"`
	Status SuppressionListStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// SuppressionListList is a list of SuppressionLists.
type SuppressionListList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SuppressionList `json:"items"`
}

// ConditionDataReappeared: the last sweep found data of someone on the list.
const ConditionDataReappeared = "DataReappeared"

// Reasons of a SuppressionList's conditions.
const (
	ReasonSourceInvalid   = "SourceInvalid"
	ReasonSweeping        = "Sweeping"
	ReasonSweepFailed     = "SweepFailed"
	ReasonSwept           = "Swept"
	ReasonNoneFound       = "NoneFound"
	ReasonDataFound       = "DataFound"
	ReasonEntriesInvalid  = "EntriesInvalid"
	ReasonDownloadApplied = "DownloadApplied"
)

// SecretTypeSuppressionList marks a Secret that holds a DROP download a SuppressionList may read.
const SecretTypeSuppressionList = "suppression-list"

func init() {
	register(&SuppressionList{}, &SuppressionListList{})
}
