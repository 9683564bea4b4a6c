package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StoreType names the connector that talks to a store.
// +kubebuilder:validation:Enum=postgres;mysql;sqlite;redis;http;mongodb;s3
type StoreType string

const (
	StoreTypePostgres StoreType = "postgres"
	StoreTypeMySQL    StoreType = "mysql"
	StoreTypeSQLite   StoreType = "sqlite"
	StoreTypeRedis    StoreType = "redis"
	StoreTypeHTTP     StoreType = "http"
)

// IsSQL reports whether the store is mapped with spec.tables.
func (t StoreType) IsSQL() bool {
	return t == StoreTypePostgres || t == StoreTypeMySQL || t == StoreTypeSQLite
}

// TableAction says what happens to a subject's rows in a table.
// +kubebuilder:validation:Enum=delete;mask;retain
type TableAction string

const (
	ActionDelete TableAction = "delete"
	ActionMask   TableAction = "mask"
	ActionRetain TableAction = "retain"
)

// KeyAction says what happens to a subject's Redis keys.
// +kubebuilder:validation:Enum=delete;retain
type KeyAction string

const (
	KeyActionDelete KeyAction = "delete"
	KeyActionRetain KeyAction = "retain"
)

// MaskStrategy says how a masked column is rewritten.
// +kubebuilder:validation:Enum=nullify;redact;hash
type MaskStrategy string

const (
	// MaskNullify sets the column to NULL.
	MaskNullify MaskStrategy = "nullify"
	// MaskRedact sets the column to the fixed marker RedactedMarker.
	MaskRedact MaskStrategy = "redact"
	// MaskHash replaces the column by a salted SHA-256 of its value, so joins inside the store still work.
	MaskHash MaskStrategy = "hash"
)

// RedactedMarker is what the redact strategy writes.
const RedactedMarker = "[REDACTED]"

// SecretKeySelector points at one key of a Secret. For a DataStore the Secret lives in the store's
// namespace; for a ClusterDataStore it lives in the operator's namespace.
type SecretKeySelector struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// Key within the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// Connection says how to reach a store.
type Connection struct {
	// SecretRef holds the DSN (postgres, mysql), file path (sqlite), URL (redis), bearer token
	// (http) or "<accessKeyId>:<secretAccessKey>" (s3).
	// +optional
	SecretRef *SecretKeySelector `json:"secretRef,omitempty"`
	// URL is the non-secret base endpoint of an http store, e.g. https://crm.internal/dsr, or
	// the endpoint of an s3 store, addressed path-style, e.g. https://s3.eu-west-1.amazonaws.com.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	URL string `json:"url,omitempty"`
	// CASecretRef holds a PEM CA bundle that an http or s3 store's TLS certificate must chain to.
	// +optional
	CASecretRef *SecretKeySelector `json:"caSecretRef,omitempty"`
	// AllowInsecureHTTP lets an http or s3 store use a plain http:// URL, on which the bearer
	// token (http), object keys and contents and the subjects' identifiers cross the network
	// unencrypted. Without it (or the manager's --allow-insecure-http) such a store is refused
	// with reason EgressDenied before any connection. Only for http and s3 stores.
	// +optional
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`
	// Timeout bounds every call to the store.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('10m')",message="timeout must be between 1s and 10m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// ColumnMatch selects the rows whose column equals one of the subject's identifiers.
type ColumnMatch struct {
	// Column compared with the identifier.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Column string `json:"column"`
	// Identifier is the name of the subject's identifier: a key of the identifiers Secret (email,
	// userId, phone) or an identifier some table mapping provides (customerId).
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_.-]*$`
	Identifier string `json:"identifier"`
	// As says how the column's values compare with the identifier: email (trimmed, any letter
	// case, internationalised domains in either form), phone (the same number in any formatting)
	// or exact (byte for byte). Unset: by the identifier's name, email* as email, phone* as phone,
	// anything else exact. Set exact to opt a column out of normalised matching.
	// +optional
	As MatchKind `json:"as,omitempty"`
}

// MatchKind says how values of an identifier compare.
// +kubebuilder:validation:Enum=email;phone;exact
type MatchKind string

const (
	MatchEmail MatchKind = "email"
	MatchPhone MatchKind = "phone"
	MatchExact MatchKind = "exact"
)

// ColumnProvide says that a column of the subject's rows holds a further identifier of the subject
// (a derived identifier), which other tables, key patterns or http stores can match.
type ColumnProvide struct {
	// Identifier is the name the derived values go by, e.g. customerId. It may also be a name of
	// the identifiers Secret: the values then add up.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_.-]*$`
	Identifier string `json:"identifier"`
	// Column whose values, in the rows this table mapping matches, are the identifier's values.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Column string `json:"column"`
}

// ColumnMask rewrites one column of the subject's rows.
type ColumnMask struct {
	// Column to rewrite.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Column string `json:"column"`
	// Strategy: nullify (NULL), redact (the marker "[REDACTED]") or hash (salted SHA-256, hex).
	Strategy MaskStrategy `json:"strategy"`
}

// TableMapping says where a subject's rows are in one table and what to do with them. A table may
// be listed more than once with different matches and actions; when several mappings match one row,
// retain beats delete and delete beats mask.
// +kubebuilder:validation:XValidation:rule="self.action != 'retain' || (has(self.retainReason) && size(self.retainReason) > 0)",message="retainReason is required when action is retain",fieldPath=".retainReason"
// +kubebuilder:validation:XValidation:rule="self.action != 'mask' || (has(self.mask) && size(self.mask) > 0)",message="mask is required when action is mask",fieldPath=".mask"
// +kubebuilder:validation:XValidation:rule="self.action == 'mask' || !has(self.mask) || size(self.mask) == 0",message="mask is only allowed when action is mask",fieldPath=".mask"
type TableMapping struct {
	// Name of the table, optionally schema-qualified (schema.table).
	// +kubebuilder:validation:MaxLength=127
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`
	Name string `json:"name"`
	// Match lists the columns that identify the subject; a row matches when any of them equals
	// the subject's identifier of that name.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Match []ColumnMatch `json:"match"`
	// Provides lists columns of the matched rows that hold further identifiers of the subject;
	// every value found becomes a value of that identifier (derived identifiers).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Provides []ColumnProvide `json:"provides,omitempty"`
	// Action: delete the rows, mask columns of them, or retain them under a legal hold.
	Action TableAction `json:"action"`
	// Mask lists the columns rewritten when action is mask.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Mask []ColumnMask `json:"mask,omitempty"`
	// RetainReason is the legal ground for keeping the rows (GDPR Art. 17(3)), shown to auditors.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	RetainReason string `json:"retainReason,omitempty"`
}

// KeyMapping says which Redis keys hold a subject's data and what to do with them.
// +kubebuilder:validation:XValidation:rule="self.action != 'retain' || (has(self.retainReason) && size(self.retainReason) > 0)",message="retainReason is required when action is retain",fieldPath=".retainReason"
type KeyMapping struct {
	// Pattern of the keys, with {identifier} placeholders, optionally ending in a glob after a
	// separator, e.g. "session:{userId}:*". The placeholders are replaced by the subject's
	// identifiers, escaped so that they match only themselves.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^([^*?\[\]{}\\\s]|\{[A-Za-z][A-Za-z0-9_.-]*\})*\{[A-Za-z][A-Za-z0-9_.-]*\}([^*?\[\]{}\\\s]|\{[A-Za-z][A-Za-z0-9_.-]*\})*([^*?\[\]{}\\\s}]\*)?$`
	Pattern string `json:"pattern"`
	// Action: delete the keys, or retain them under a legal hold.
	Action KeyAction `json:"action"`
	// RetainReason is the legal ground for keeping the keys.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	RetainReason string `json:"retainReason,omitempty"`
}

// DeepScope is what a deep verification searches.
// +kubebuilder:validation:Enum=mapped;database
type DeepScope string

const (
	// DeepScopeMapped searches the text-like columns of the mapped tables.
	DeepScopeMapped DeepScope = "mapped"
	// DeepScopeDatabase also searches every other table and view the store's credentials can
	// read, and reports copies found there as unmapped findings.
	DeepScopeDatabase DeepScope = "database"
)

// DataStoreVerification tunes how requests verify a store.
type DataStoreVerification struct {
	// DeepScope is what a deep verification (a request's spec.verification.deep) searches for
	// every identifier value of the subject, direct and derived: mapped (the text-like columns of
	// the mapped tables) or database (also every text-like column of every other table and view
	// the credentials can read: every schema of a postgres database; the DSN's mysql database
	// and every database the mapping names; sqlite's main database and the schemas the mapping
	// names).
	// Copies outside the mapping are reported as unmapped findings by table and column; they
	// never count as remaining, since the mapping cannot erase them until someone maps them.
	// database is for postgres, mysql, sqlite and mongodb stores (mongodb: every other collection
	// of the databases the mapping names), and scans every table or collection it searches.
	// +optional
	// +kubebuilder:default=mapped
	DeepScope DeepScope `json:"deepScope,omitempty"`
}

// DataStoreSpec describes a store that holds personal data and how a subject's data is found in it.
// +kubebuilder:validation:XValidation:rule="!(self.type in ['postgres', 'mysql', 'sqlite']) || (has(self.tables) && size(self.tables) > 0)",message="tables is required for postgres, mysql and sqlite stores",fieldPath=".tables"
// +kubebuilder:validation:XValidation:rule="self.type in ['postgres', 'mysql', 'sqlite'] || !has(self.tables) || size(self.tables) == 0",message="tables is only allowed for postgres, mysql and sqlite stores",fieldPath=".tables"
// +kubebuilder:validation:XValidation:rule="self.type != 'redis' || (has(self.keys) && size(self.keys) > 0)",message="keys is required for redis stores",fieldPath=".keys"
// +kubebuilder:validation:XValidation:rule="self.type == 'redis' || !has(self.keys) || size(self.keys) == 0",message="keys is only allowed for redis stores",fieldPath=".keys"
// +kubebuilder:validation:XValidation:rule="self.type != 'mongodb' || (has(self.collections) && size(self.collections) > 0)",message="collections is required for mongodb stores",fieldPath=".collections"
// +kubebuilder:validation:XValidation:rule="self.type == 'mongodb' || !has(self.collections) || size(self.collections) == 0",message="collections is only allowed for mongodb stores",fieldPath=".collections"
// +kubebuilder:validation:XValidation:rule="self.type != 'http' || (has(self.connection.url) && size(self.connection.url) > 0)",message="connection.url is required for http stores",fieldPath=".connection.url"
// +kubebuilder:validation:XValidation:rule="self.type in ['http', 's3'] || !has(self.connection.allowInsecureHTTP) || !self.connection.allowInsecureHTTP",message="connection.allowInsecureHTTP is only allowed for http and s3 stores",fieldPath=".connection.allowInsecureHTTP"
// +kubebuilder:validation:XValidation:rule="self.type == 'http' || has(self.connection.secretRef)",message="connection.secretRef is required for postgres, mysql, sqlite, redis, mongodb and s3 stores",fieldPath=".connection.secretRef"
// +kubebuilder:validation:XValidation:rule="self.type in ['http', 's3'] || (!has(self.connection.url) && !has(self.connection.caSecretRef))",message="connection.url and connection.caSecretRef are only allowed for http and s3 stores",fieldPath=".connection"
// +kubebuilder:validation:XValidation:rule="self.type != 's3' || (has(self.connection.url) && size(self.connection.url) > 0)",message="connection.url is required for s3 stores",fieldPath=".connection.url"
// +kubebuilder:validation:XValidation:rule="self.type != 's3' || (has(self.objects) && size(self.objects) > 0)",message="objects is required for s3 stores",fieldPath=".objects"
// +kubebuilder:validation:XValidation:rule="self.type == 's3' || !has(self.objects) || size(self.objects) == 0",message="objects is only allowed for s3 stores",fieldPath=".objects"
// +kubebuilder:validation:XValidation:rule="self.type in ['postgres', 'mysql', 'sqlite', 'mongodb'] || !has(self.verification) || !has(self.verification.deepScope) || self.verification.deepScope == 'mapped'",message="verification.deepScope database is only allowed for postgres, mysql, sqlite and mongodb stores",fieldPath=".verification.deepScope"
type DataStoreSpec struct {
	// Type of the store; it picks the connector.
	Type StoreType `json:"type"`
	// Connection to the store.
	Connection Connection `json:"connection"`
	// Tables maps a subject to rows (postgres, mysql, sqlite).
	// +optional
	// +kubebuilder:validation:MaxItems=128
	// +listType=atomic
	Tables []TableMapping `json:"tables,omitempty"`
	// DefaultRegion places phone numbers written without a country code, as an ISO 3166-1
	// two-letter region, e.g. US. Unset: the manager's --default-phone-region.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Z]{2}$`
	DefaultRegion string `json:"defaultRegion,omitempty"`
	// Keys maps a subject to keys (redis).
	// +optional
	// +kubebuilder:validation:MaxItems=128
	// +listType=atomic
	Keys []KeyMapping `json:"keys,omitempty"`
	// Collections maps a subject to documents (mongodb).
	// +optional
	// +kubebuilder:validation:MaxItems=128
	// +listType=atomic
	Collections []CollectionMapping `json:"collections,omitempty"`
	// Objects maps a subject to objects (s3).
	// +optional
	// +kubebuilder:validation:MaxItems=128
	// +listType=atomic
	Objects []ObjectMapping `json:"objects,omitempty"`

	// Description of the store for access reports (GDPR Art. 15), e.g. "Customer relationship database".
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Description string `json:"description,omitempty"`
	// Purposes of the processing (Art. 15(1)(a)).
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	Purposes []string `json:"purposes,omitempty"`
	// DataCategories held (Art. 15(1)(b)), e.g. contact details, order history.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	DataCategories []string `json:"dataCategories,omitempty"`
	// Retention period or the criteria that set it (Art. 15(1)(d)).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Retention string `json:"retention,omitempty"`
	// Recipients the data is disclosed to (Art. 15(1)(c)).
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	Recipients []string `json:"recipients,omitempty"`
	// Art15Context: source, automatedDecisionMaking and thirdCountries (Art. 15(1)(g), (h), 15(2)).
	Art15Context `json:",inline"`

	// Verification tunes how requests verify this store.
	// +optional
	Verification *DataStoreVerification `json:"verification,omitempty"`

	// CheckInterval is how often the store's connection and mapping are checked.
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s') && duration(self) <= duration('24h')",message="checkInterval must be between 10s and 24h"
	CheckInterval *metav1.Duration `json:"checkInterval,omitempty"`
}

// DataStoreStatus is what the last check of a store found.
type DataStoreStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LastCheckTime is when the store was last checked.
	// +optional
	LastCheckTime *metav1.Time `json:"lastCheckTime,omitempty"`
	// Warnings from the last check that do not make the store unusable, e.g. a matched column
	// without an index (every erasure would scan the table).
	// +optional
	// +listType=atomic
	Warnings []string `json:"warnings,omitempty"`
	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dstore,categories=dsr
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DataStore is a store in one namespace that holds personal data; requests in that namespace use it.
type DataStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DataStoreSpec   `json:"spec,omitempty"`
	Status DataStoreStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// DataStoreList is a list of DataStores.
type DataStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DataStore `json:"items"`
}

// ClusterDataStoreSpec is a DataStoreSpec plus the namespaces whose requests may use the store.
type ClusterDataStoreSpec struct {
	DataStoreSpec `json:",inline"`
	// NamespaceSelector selects the namespaces whose requests may use this store. An empty
	// selector admits every namespace; a missing one admits none.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cds,categories=dsr
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ClusterDataStore is a store shared by the namespaces its namespaceSelector admits. Its Secrets
// live in the operator's namespace.
type ClusterDataStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterDataStoreSpec `json:"spec,omitempty"`
	Status DataStoreStatus      `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterDataStoreList is a list of ClusterDataStores.
type ClusterDataStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterDataStore `json:"items"`
}

func init() {
	register(&DataStore{}, &DataStoreList{}, &ClusterDataStore{}, &ClusterDataStoreList{})
}
