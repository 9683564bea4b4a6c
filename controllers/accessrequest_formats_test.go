package controllers_test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/export"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

// TestAccessExportInEveryFormat: one request for json, csv and html gets all three in its Secret,
// each described by status.export.files, with the store's and the installation's Art. 15 context.
func TestAccessExportInEveryFormat(t *testing.T) {
	startOperator(t, func(o *operator.Options) {
		o.ReportContext = &export.Installation{Controller: &export.Party{Name: "Example Shop GmbH", Email: "privacy@example.com"},
			SupervisoryAuthorities: map[string]*export.Party{"GDPR": {Name: "Berliner Datenschutzbeauftragte"}}}
	})
	ns := newNamespace(t, nil)
	f := startSQLiteFixture(t)
	create(t, connSecret(ns, "shop-conn", map[string]string{"dsn": f.dsn}))
	spec := f.spec("shop-conn")
	spec.Source = "Collected from you"
	spec.AutomatedDecisionMaking = &privacyv1alpha1.AutomatedDecisionMaking{Used: false}
	spec.ThirdCountries = &privacyv1alpha1.ThirdCountryTransfers{Transfers: []privacyv1alpha1.ThirdCountryTransfer{
		{Destination: "United States", Recipient: "Example CRM Inc.", Safeguards: "Standard contractual clauses"}}}
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: spec})
	create(t, secret(ns, "jane", subjectIDs))
	create(t, accessRequest(ns, "all-formats", "jane", func(ar *privacyv1alpha1.AccessRequest) {
		ar.Spec.Formats = []privacyv1alpha1.ExportFormat{"html", "csv", "json"}
	}))

	ar := waitAR(t, ns, "all-formats", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, settle)
	doc, _ := readExport(t, ar) // status.export.key still names the JSON document
	if doc.Controller == nil || doc.Controller.Name != "Example Shop GmbH" || doc.SupervisoryAuthority == nil {
		t.Errorf("the installation's context is not in the export: %+v %+v", doc.Controller, doc.SupervisoryAuthority)
	}
	if len(doc.Stores) != 1 || doc.Stores[0].Source != "Collected from you" || doc.Stores[0].ThirdCountries == nil {
		t.Fatalf("the store's Art. 15 context is not in the export: %+v", doc.Stores)
	}
	missing := map[string]bool{}
	for _, m := range doc.Missing {
		missing[m.Item] = true
	}
	if !missing["dataProtectionOfficer"] || missing["controller"] || missing["source"] {
		t.Errorf("missing lists %v; want the data protection officer only among the context items", missing)
	}

	var s corev1.Secret
	if err := env.Client.Get(context.Background(), keyOf(ns, ar.Status.Export.SecretName), &s); err != nil {
		t.Fatal(err)
	}
	files := ar.Status.Export.Files
	if len(files) != 3 || files[0].Format != "json" || files[1].Format != "csv" || files[2].Format != "html" {
		t.Fatalf("status.export.files: %+v", files)
	}
	if len(s.Data) != 3 {
		t.Errorf("the Secret holds %d keys, want 3", len(s.Data))
	}
	content := map[privacyv1alpha1.ExportFormat][]byte{}
	for _, f := range files {
		stored, ok := s.Data[f.Key]
		if !ok || receipt.Digest(stored) != f.SHA256 || int64(len(stored)) != f.Bytes {
			t.Fatalf("%s: the Secret's key %s does not match status (present %v)", f.Format, f.Key, ok)
		}
		if f.Encoding == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(stored))
			if err != nil {
				t.Fatal(err)
			}
			if stored, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		content[f.Format] = stored
	}

	zr, err := zip.NewReader(bytes.NewReader(content["csv"]), int64(len(content["csv"])))
	if err != nil {
		t.Fatal(err)
	}
	var locations int
	for _, zf := range zr.File {
		if strings.HasPrefix(zf.Name, "records/DataStore-shop/") {
			locations++
		}
	}
	if locations != len(doc.Stores[0].Locations) {
		t.Errorf("the zip has %d location files, the JSON %d locations", locations, len(doc.Stores[0].Locations))
	}
	page := string(content["html"])
	for _, want := range []string{`<html lang="en">`, "Example Shop GmbH", "Berliner Datenschutzbeauftragte", "Standard contractual clauses"} {
		if !strings.Contains(page, want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	if doc.RecordCount == 0 || !strings.Contains(page, "We found ") {
		t.Errorf("no records (%d) or no count in the report", doc.RecordCount)
	}
}

// TestAccessFormatsAndArt15FieldsAreValidated: the API server refuses duplicate or unknown formats
// and Art. 15 statements that say nothing.
func TestAccessFormatsAndArt15FieldsAreValidated(t *testing.T) {
	ns := newNamespace(t, nil)
	ctx := context.Background()
	for name, formats := range map[string][]privacyv1alpha1.ExportFormat{"dup": {"json", "json"}, "pdf": {"pdf"}} {
		ar := accessRequest(ns, "formats-"+name, "jane", func(ar *privacyv1alpha1.AccessRequest) { ar.Spec.Formats = formats })
		if err := env.Client.Create(ctx, ar); !apierrors.IsInvalid(err) {
			t.Errorf("formats %v: want Invalid, got %v", formats, err)
		}
	}
	f := &sqlFixture{storeType: privacyv1alpha1.StoreTypeSQLite}
	for name, mutate := range map[string]func(*privacyv1alpha1.DataStoreSpec){
		"no-logic": func(s *privacyv1alpha1.DataStoreSpec) {
			s.AutomatedDecisionMaking = &privacyv1alpha1.AutomatedDecisionMaking{Used: true}
		},
		"empty-transfers": func(s *privacyv1alpha1.DataStoreSpec) { s.ThirdCountries = &privacyv1alpha1.ThirdCountryTransfers{} },
		"none-and-list": func(s *privacyv1alpha1.DataStoreSpec) {
			s.ThirdCountries = &privacyv1alpha1.ThirdCountryTransfers{None: true, Transfers: []privacyv1alpha1.ThirdCountryTransfer{{Destination: "US", Safeguards: "SCC"}}}
		},
		"no-safeguards": func(s *privacyv1alpha1.DataStoreSpec) {
			s.ThirdCountries = &privacyv1alpha1.ThirdCountryTransfers{Transfers: []privacyv1alpha1.ThirdCountryTransfer{{Destination: "US"}}}
		},
	} {
		spec := f.spec("conn")
		mutate(&spec)
		ds := &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
		if err := env.Client.Create(ctx, ds); !apierrors.IsInvalid(err) {
			t.Errorf("%s: want Invalid, got %v", name, err)
		}
	}
	ok := f.spec("conn")
	ok.AutomatedDecisionMaking = &privacyv1alpha1.AutomatedDecisionMaking{Used: true, Logic: "A score decides on prepayment"}
	ok.ThirdCountries = &privacyv1alpha1.ThirdCountryTransfers{None: true}
	if err := env.Client.Create(ctx, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "valid"}, Spec: ok}); err != nil {
		t.Errorf("a valid Art. 15 context is refused: %v", err)
	}
}
