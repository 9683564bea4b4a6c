package export

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"sort"
)

//go:embed templates/report.html.tmpl
var templates embed.FS

// reportTemplate is parsed once; html/template escapes every value by its context (text,
// attribute, URL), so record contents can never become markup or script.
var reportTemplate = template.Must(template.ParseFS(templates, "templates/report.html.tmpl"))

// htmlView is the document as the letter shows it: every string cleaned of control characters.
type htmlView struct {
	*Document
	Generated             string
	Controller            *Party
	DataProtectionOfficer *Party
	SupervisoryAuthority  *Party
	Stores                []htmlStore
}

type htmlStore struct {
	Title                                string
	RecordCount                          int64
	Purposes, DataCategories, Recipients []string
	Retention, Source, Automated         string
	Transfers                            []string
	Tables                               []htmlTable
}

type htmlTable struct {
	Location string
	Header   []string
	Rows     [][]string
}

// RenderHTML writes the document as one self-contained page that reads as a letter to the person:
// no script, no external resource (a Content-Security-Policy forbids any), inline styles only.
func RenderHTML(doc *Document) ([]byte, error) {
	view := htmlView{Document: doc, Generated: doc.GeneratedAt.Format("2 January 2006 at 15:04 UTC"),
		Controller: cleanParty(doc.Controller), DataProtectionOfficer: cleanParty(doc.DataProtectionOfficer),
		SupervisoryAuthority: cleanParty(doc.SupervisoryAuthority)}
	for _, s := range doc.Stores {
		title := s.Name
		if s.Description != "" {
			title = s.Description + " (" + s.Name + ")"
		}
		hs := htmlStore{Title: clean(title), RecordCount: s.RecordCount, Purposes: cleanAll(s.Purposes),
			DataCategories: cleanAll(s.DataCategories), Recipients: cleanAll(s.Recipients), Retention: clean(s.Retention),
			Source: clean(s.Source), Automated: clean(automatedText(s)), Transfers: cleanAll(transferTexts(s))}
		for _, loc := range s.Locations {
			rows := locationRows(s, loc)
			for _, row := range rows {
				for i := range row {
					row[i] = clean(row[i])
				}
			}
			hs.Tables = append(hs.Tables, htmlTable{Location: clean(loc.Location), Header: rows[0], Rows: rows[1:]})
		}
		sort.SliceStable(hs.Tables, func(i, j int) bool { return hs.Tables[i].Location < hs.Tables[j].Location })
		view.Stores = append(view.Stores, hs)
	}
	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, view); err != nil {
		return nil, fmt.Errorf("rendering the HTML report: %w", err)
	}
	return buf.Bytes(), nil
}

func clean(s string) string { return VisibleControls(s, false) }

func cleanAll(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = clean(s)
	}
	return out
}

func cleanParty(p *Party) *Party {
	if p == nil {
		return nil
	}
	return &Party{Name: clean(p.Name), Address: clean(p.Address), Email: clean(p.Email), Phone: clean(p.Phone), URL: clean(p.URL)}
}
