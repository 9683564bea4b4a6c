package export

import (
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// Installation is the access report context that holds for every store of an installation: who the
// controller is, how to reach its data protection officer, and the supervisory authority a person
// complains to under each regulation. The chart renders it from its values into a ConfigMap that
// the manager reads at start (--access-report-context).
type Installation struct {
	// Controller is who decides why and how the data is processed (Art. 15(1), 13(1)(a)).
	Controller *Party `json:"controller,omitempty"`
	// DataProtectionOfficer's contact (Art. 13(1)(b)).
	DataProtectionOfficer *Party `json:"dataProtectionOfficer,omitempty"`
	// SupervisoryAuthorities by regulation name (GDPR, UK-GDPR, ...) (Art. 15(1)(f), Art. 77).
	SupervisoryAuthorities map[string]*Party `json:"supervisoryAuthorities,omitempty"`
}

// Party is an organisation or person the report names, with the ways to reach it.
type Party struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	Email   string `json:"email,omitempty"`
	Phone   string `json:"phone,omitempty"`
	URL     string `json:"url,omitempty"`
}

// Right is one thing the person can do about the data.
type Right struct {
	Name        string `json:"name"`
	Article     string `json:"article,omitempty"`
	Description string `json:"description"`
}

// Missing is one piece of Art. 15 information the configuration does not give.
type Missing struct {
	// Item is the field that would give it, e.g. "source" or "supervisoryAuthorities.GDPR".
	Item    string `json:"item"`
	Article string `json:"article"`
	// Store is "<kind>/<name>" for a store's field; empty for the installation's.
	Store string `json:"store,omitempty"`
	// Description says in words what is missing.
	Description string `json:"description"`
}

// LoadInstallation reads the context file; unknown fields are refused so that a misspelt key does
// not silently drop the supervisory authority from every report.
func LoadInstallation(path string) (*Installation, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the access report context: %w", err)
	}
	var inst Installation
	if err := yaml.UnmarshalStrict(raw, &inst); err != nil {
		return nil, fmt.Errorf("parsing the access report context %s: %w", path, err)
	}
	for _, p := range []*Party{inst.Controller, inst.DataProtectionOfficer} {
		if p != nil && strings.TrimSpace(p.Name) == "" && p.Email == "" {
			return nil, fmt.Errorf("access report context %s: a party needs a name or an email", path)
		}
	}
	return &inst, nil
}

// gdprLike are the regulations whose rights the report cites by GDPR article.
var gdprLike = map[string]bool{"GDPR": true, "UK-GDPR": true}

// rightsUnder lists the person's rights; the articles are cited only for the GDPR and UK GDPR,
// whose numbering they share.
func rightsUnder(regulation string) []Right {
	rights := []Right{
		{"Rectification", "Art. 16", "You can have inaccurate data about you corrected and incomplete data completed."},
		{"Erasure", "Art. 17", "You can have data about you erased when it is no longer needed, you withdraw your consent or it was processed unlawfully."},
		{"Restriction of processing", "Art. 18", "You can have the processing restricted while the accuracy or lawfulness of the data is checked."},
		{"Objection", "Art. 21", "You can object to processing based on legitimate interests, and at any time to direct marketing."},
		{"Data portability", "Art. 20", "You can receive the data you provided in a machine-readable format (the JSON file of this export) and have it sent to another controller."},
		{"Complaint", "Art. 77", "You can complain to a supervisory authority, in particular where you live or work, if you think the processing breaks the law."},
	}
	if !gdprLike[regulation] {
		for i := range rights {
			rights[i].Article = ""
		}
	}
	return rights
}

// addContext adds the installation's context and the rights to the document and lists every
// Art. 15 item that neither the installation nor a store gives.
func addContext(doc *Document, inst *Installation) {
	doc.Rights = rightsUnder(doc.Regulation)
	doc.Missing = []Missing{}
	if inst == nil {
		inst = &Installation{}
	}
	doc.Controller, doc.DataProtectionOfficer = inst.Controller, inst.DataProtectionOfficer
	doc.SupervisoryAuthority = inst.SupervisoryAuthorities[doc.Regulation]
	miss := func(store, item, article, desc string) {
		doc.Missing = append(doc.Missing, Missing{Item: item, Article: article, Store: store, Description: desc})
	}
	if doc.Controller == nil {
		miss("", "controller", "Art. 13(1)(a)", "the controller's identity and contact details")
	}
	if doc.DataProtectionOfficer == nil {
		miss("", "dataProtectionOfficer", "Art. 13(1)(b)", "the data protection officer's contact details")
	}
	if doc.SupervisoryAuthority == nil {
		miss("", "supervisoryAuthorities."+doc.Regulation, "Art. 15(1)(f)", "the supervisory authority to complain to under "+doc.Regulation)
	}
	for _, s := range doc.Stores {
		store := s.Kind + "/" + s.Name
		if len(s.Purposes) == 0 {
			miss(store, "purposes", "Art. 15(1)(a)", "the purposes of the processing")
		}
		if len(s.DataCategories) == 0 {
			miss(store, "dataCategories", "Art. 15(1)(b)", "the categories of data held")
		}
		if len(s.Recipients) == 0 {
			miss(store, "recipients", "Art. 15(1)(c)", "the recipients the data is disclosed to")
		}
		if s.Retention == "" {
			miss(store, "retention", "Art. 15(1)(d)", "how long the data is kept")
		}
		if s.Source == "" {
			miss(store, "source", "Art. 15(1)(g)", "where data not collected from you came from")
		}
		if s.AutomatedDecisionMaking == nil {
			miss(store, "automatedDecisionMaking", "Art. 15(1)(h)", "whether the data is used for automated decisions")
		}
		if s.ThirdCountries == nil {
			miss(store, "thirdCountries", "Art. 15(2)", "whether the data is transferred outside the regulation's area, and the safeguards")
		}
	}
}
