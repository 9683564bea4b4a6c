package v1alpha1

// Art15Context is what a store adds to an access report beyond purposes, categories, retention and
// recipients (GDPR Art. 15(1)(f)-(h) and 15(2)). Every field is optional; an access report lists
// the ones a store leaves unset as missing, so that nobody mistakes silence for "none".
type Art15Context struct {
	// Source of the data that was not collected from the person (Art. 15(1)(g)), in words, e.g.
	// "Address data from Deutsche Post Direkt; everything else from you". Say
	// "Collected from you" when all of it came from the person.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Source string `json:"source,omitempty"`
	// AutomatedDecisionMaking says whether the store's data feeds automated decisions, profiling
	// included (Art. 15(1)(h), Art. 22), and if so their logic and consequences in words.
	// +optional
	AutomatedDecisionMaking *AutomatedDecisionMaking `json:"automatedDecisionMaking,omitempty"`
	// ThirdCountries says whether the data goes to countries outside the regulation's area or to
	// international organisations, and under which safeguards (Art. 15(2), Art. 46).
	// +optional
	ThirdCountries *ThirdCountryTransfers `json:"thirdCountries,omitempty"`
}

// AutomatedDecisionMaking describes automated decisions made with a store's data.
// +kubebuilder:validation:XValidation:rule="!self.used || (has(self.logic) && size(self.logic) > 0)",message="logic is required when used is true",fieldPath=".logic"
type AutomatedDecisionMaking struct {
	// Used is true when the data feeds automated decisions or profiling.
	Used bool `json:"used"`
	// Logic involved, in words a person understands, e.g. "Orders over 500 EUR are scored on
	// payment history; a low score asks for prepayment".
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Logic string `json:"logic,omitempty"`
	// Consequences the processing is meant to have for the person.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Consequences string `json:"consequences,omitempty"`
}

// ThirdCountryTransfers states the transfers outside the regulation's area: none, or a list.
// +kubebuilder:validation:XValidation:rule="(has(self.none) && self.none) != (has(self.transfers) && size(self.transfers) > 0)",message="set either none: true or at least one transfer"
type ThirdCountryTransfers struct {
	// None states that the data does not leave the regulation's area.
	// +optional
	None bool `json:"none,omitempty"`
	// Transfers lists where the data goes and under which safeguards.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	Transfers []ThirdCountryTransfer `json:"transfers,omitempty"`
}

// ThirdCountryTransfer is one transfer to a third country or international organisation.
type ThirdCountryTransfer struct {
	// Destination country or international organisation, e.g. "United States".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Destination string `json:"destination"`
	// Recipient of the data there, e.g. "Example CRM Inc.".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Recipient string `json:"recipient,omitempty"`
	// Safeguards the transfer rests on (Art. 45-49), e.g. "Adequacy decision (EU-US Data Privacy
	// Framework)" or "Standard contractual clauses (Art. 46(2)(c)); copy on request from
	// privacy@example.com".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Safeguards string `json:"safeguards"`
}

// ExportFile is one file of a delivered export.
type ExportFile struct {
	// Format of the file: json, csv (a zip with one CSV per location) or html.
	Format ExportFormat `json:"format"`
	// Key within the export Secret, e.g. export.json.gz, export.csv.zip, report.html.gz.
	Key string `json:"key"`
	// SHA256 of the exact bytes stored under the key, as "sha256:<hex>".
	SHA256 string `json:"sha256"`
	// Bytes stored under the key.
	Bytes int64 `json:"bytes"`
	// Encoding of the stored bytes: identity or gzip (a zip is identity).
	Encoding string `json:"encoding"`
}
