package v1alpha1

// Condition types.
const (
	// ConditionReady summarises the others: a store that works, a request that is done.
	ConditionReady = "Ready"
	// ConditionAccepted: the request's subject and stores were resolved.
	ConditionAccepted = "Accepted"
	// ConditionErased: every store applied its mapping.
	ConditionErased = "Erased"
	// ConditionVerified: no store holds anything that still identifies the subject.
	ConditionVerified = "Verified"
	// ConditionDeadlineExceeded: the regulation's deadline passed before the request completed.
	ConditionDeadlineExceeded = "DeadlineExceeded"
	// ConditionCollected: every store returned the subject's records.
	ConditionCollected = "Collected"
	// ConditionExpired: the export's TTL passed and the export was deleted.
	ConditionExpired = "Expired"
)

// Condition reasons, CamelCase as the API conventions ask.
const (
	ReasonReconciling        = "Reconciling"
	ReasonPending            = "Pending"
	ReasonReady              = "Ready"
	ReasonConnectionFailed   = "ConnectionFailed"
	ReasonMappingInvalid     = "MappingInvalid"
	ReasonSecretNotFound     = "SecretNotFound"
	ReasonAccepted           = "Accepted"
	ReasonIdentifiersMissing = "IdentifiersSecretNotFound"
	ReasonIdentifiersInvalid = "IdentifiersInvalid"
	ReasonUnknownIdentifier  = "UnknownIdentifier"
	ReasonNoStores           = "NoMatchingStores"
	ReasonStoreNotAllowed    = "StoreNotAllowed"
	ReasonErasing            = "Erasing"
	ReasonErased             = "Erased"
	ReasonStoreUnavailable   = "StoreUnavailable"
	ReasonStoreFailed        = "StoreFailed"
	ReasonVerifying          = "Verifying"
	ReasonVerified           = "Verified"
	ReasonDataRemains        = "DataRemains"
	ReasonDataReappeared     = "DataReappeared"
	ReasonReErased           = "ReErased"
	ReasonDryRun             = "DryRun"
	ReasonWithinDeadline     = "WithinDeadline"
	ReasonDeadlineExceeded   = "DeadlineExceeded"
	ReasonCompleted          = "Completed"
	ReasonCollecting         = "Collecting"
	ReasonCollected          = "Collected"
	ReasonExportTooLarge     = "ExportTooLarge"
	ReasonExportDelivered    = "ExportDelivered"
	ReasonNotExpired         = "NotExpired"
	ReasonExpired            = "Expired"
	ReasonFailed             = "Failed"
	// ReasonEgressDenied: the manager's egress policy (--store-deny-cidrs, --store-allow-cidrs,
	// plain http:// without opt-in) refuses the store's address; nothing was sent to it.
	ReasonEgressDenied = "EgressDenied"
)

// Reasons that a request cannot go on by itself until something is fixed.
const (
	// ReasonReceiptNotIssued: every store is verified but the signed receipt could not be written.
	ReasonReceiptNotIssued = "ReceiptNotIssued"
	// ReasonExportNotDelivered: every store answered but the export Secret could not be written.
	ReasonExportNotDelivered = "ExportNotDelivered"
	// ReasonRegulationUnknown: the request's regulation has no deadline rule.
	ReasonRegulationUnknown = "RegulationUnknown"
)

// Event reasons of a deletion's re-verification window.
const (
	// ReasonVerificationEnded: the re-verification period ended and the identifiers Secret was kept.
	ReasonVerificationEnded = "VerificationEnded"
	// ReasonIdentifiersSecretDeleted: the re-verification period ended and the identifiers Secret was deleted.
	ReasonIdentifiersSecretDeleted = "IdentifiersSecretDeleted"
)
