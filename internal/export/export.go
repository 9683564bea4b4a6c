// Package export packages what an access request collected into one document that a person and a
// machine can both read (GDPR Art. 15 and Art. 20), and encodes it for delivery in a Secret.
package export

import (
	"fmt"
	"sort"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Format names the document's schema.
const Format = "privacy.dsr.dev/access-export/v1"

// MaxBytes is the most an export may take in its Secret. The API server refuses Secrets over 1 MiB;
// the rest is left for the Secret's metadata.
const MaxBytes = 1<<20 - 16<<10

// gzipFrom is the size from which compressing is tried; below it gzip's header costs more than it saves.
const gzipFrom = 1 << 10

// Document is an access export.
type Document struct {
	Format        string    `json:"format"`
	Request       Request   `json:"request"`
	Regulation    string    `json:"regulation"`
	SubjectDigest string    `json:"subjectDigest"`
	GeneratedAt   time.Time `json:"generatedAt"`
	// Complete is true: an incomplete export is never delivered.
	Complete    bool   `json:"complete"`
	RecordCount int64  `json:"recordCount"`
	Summary     string `json:"summary"`
	// Controller, DataProtectionOfficer and SupervisoryAuthority come from the installation's
	// access report context (nil when it does not name them: Missing says so).
	Controller            *Party `json:"controller,omitempty"`
	DataProtectionOfficer *Party `json:"dataProtectionOfficer,omitempty"`
	SupervisoryAuthority  *Party `json:"supervisoryAuthority,omitempty"`
	// Rights the person has about the data (Art. 15(1)(e)).
	Rights []Right `json:"rights"`
	// Missing lists the Art. 15 information the operator's configuration does not give, so that
	// the controller can add it by hand rather than leaving it out silently.
	Missing []Missing `json:"missing"`
	Stores  []Store   `json:"stores"`
}

// Request identifies the access request.
type Request struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Store is one store's part: its Art. 15 context and the subject's records grouped by location.
type Store struct {
	Kind           string   `json:"kind"`
	Name           string   `json:"name"`
	Type           string   `json:"type"`
	Description    string   `json:"description,omitempty"`
	Purposes       []string `json:"purposes"`
	DataCategories []string `json:"dataCategories"`
	Retention      string   `json:"retention,omitempty"`
	Recipients     []string `json:"recipients"`
	// Source, AutomatedDecisionMaking and ThirdCountries are Art. 15(1)(g), (h) and 15(2).
	Source                  string                                   `json:"source,omitempty"`
	AutomatedDecisionMaking *privacyv1alpha1.AutomatedDecisionMaking `json:"automatedDecisionMaking,omitempty"`
	ThirdCountries          *privacyv1alpha1.ThirdCountryTransfers   `json:"thirdCountries,omitempty"`
	RecordCount             int64                                    `json:"recordCount"`
	Locations               []Location                               `json:"locations"`
}

// Location is a table or key pattern and the subject's records there: in Records, or, for a
// document built from a Spool, on disk (Records is then nil; the renderers read them one at a
// time).
type Location struct {
	Location string   `json:"location"`
	Records  []Record `json:"records"`
	spooled  *spoolLocation
}

// Record is one row or key, values as stored: masked values stay masked.
type Record struct {
	Key  string         `json:"key,omitempty"`
	Data map[string]any `json:"data"`
}

// StoreInput is what one store gave.
type StoreInput struct {
	Kind privacyv1alpha1.StoreKind
	Name string
	Spec *privacyv1alpha1.DataStoreSpec
	Data *connector.Collection
	// Spooled holds the store's records instead of Data: they stay on disk.
	Spooled *StoreSpool
}

// Build assembles the document without an installation context: the controller, its data
// protection officer and the supervisory authority are listed as missing. Its inputs hold their
// records in memory (Data).
func Build(req Request, regulation, digest string, generatedAt time.Time, inputs []StoreInput) *Document {
	return BuildWithContext(nil, req, regulation, digest, generatedAt, inputs)
}

// BuildWithContext assembles the document with the installation's context (nil: none). Stores and
// locations are sorted, so the same data gives the same document. Spooled inputs must be
// finished (StoreSpool.Finish).
func BuildWithContext(inst *Installation, req Request, regulation, digest string, generatedAt time.Time, inputs []StoreInput) *Document {
	doc := &Document{Format: Format, Request: req, Regulation: regulation, SubjectDigest: digest,
		GeneratedAt: generatedAt.UTC().Truncate(time.Second), Complete: true, Stores: []Store{}}
	for _, in := range inputs {
		s := Store{Kind: string(in.Kind), Name: in.Name, Type: string(in.Spec.Type), Description: in.Spec.Description,
			Purposes: nonNil(in.Spec.Purposes), DataCategories: nonNil(in.Spec.DataCategories), Retention: in.Spec.Retention,
			Recipients: nonNil(in.Spec.Recipients), Source: in.Spec.Source,
			AutomatedDecisionMaking: in.Spec.AutomatedDecisionMaking, ThirdCountries: in.Spec.ThirdCountries, Locations: []Location{}}
		if in.Spooled != nil {
			s.Locations, s.RecordCount = in.Spooled.locations(), in.Spooled.Count()
		} else {
			byLoc := map[string][]Record{}
			for _, r := range in.Data.Records {
				data := r.Data
				if data == nil {
					data = map[string]any{}
				}
				byLoc[r.Location] = append(byLoc[r.Location], Record{Key: r.Key, Data: data})
			}
			for loc, recs := range byLoc {
				s.Locations = append(s.Locations, Location{Location: loc, Records: recs})
				s.RecordCount += int64(len(recs))
			}
			sort.Slice(s.Locations, func(i, j int) bool { return s.Locations[i].Location < s.Locations[j].Location })
		}
		doc.Stores = append(doc.Stores, s)
		doc.RecordCount += s.RecordCount
	}
	sort.Slice(doc.Stores, func(i, j int) bool {
		if doc.Stores[i].Kind != doc.Stores[j].Kind {
			return doc.Stores[i].Kind > doc.Stores[j].Kind // DataStore before ClusterDataStore
		}
		return doc.Stores[i].Name < doc.Stores[j].Name
	})
	addContext(doc, inst)
	if doc.RecordCount == 0 {
		doc.Summary = fmt.Sprintf("No records of the subject were found in any of the %d stores searched.", len(doc.Stores))
	} else {
		doc.Summary = fmt.Sprintf("%d records of the subject were found in %d stores.", doc.RecordCount, len(doc.Stores))
	}
	return doc
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Encoded is a document ready for its Secret.
type Encoded struct {
	Format   privacyv1alpha1.ExportFormat
	Key      string
	Bytes    []byte
	Encoding string
	SHA256   string
	// Raw is the size before compression.
	Raw int
}

// TooLargeError says an export does not fit in a Secret.
type TooLargeError struct {
	Size, Limit int
	// Stopped: rendering stopped once one file alone was over the limit; Size is what was
	// written until then.
	Stopped bool
}

func (e *TooLargeError) Error() string {
	if e.Stopped {
		return fmt.Sprintf("the export is more than %d bytes (after compression) but a Secret holds at most %d bytes; no partial export is delivered", e.Size, e.Limit)
	}
	return fmt.Sprintf("the export is %d bytes (after compression) but a Secret holds at most %d bytes; no partial export is delivered", e.Size, e.Limit)
}
