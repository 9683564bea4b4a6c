package export

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"iter"
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

// htmlTable is one location's records. Rows reads them as the template ranges over it, so that
// a page is written without all its rows in memory; a failure to read stops the range and is
// kept in err.
type htmlTable struct {
	Location string
	Count    int64
	Header   []string
	Rows     iter.Seq[[]string]
}

// RenderHTML renders the page in memory (see WriteHTML).
func RenderHTML(doc *Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteHTML writes the document as one self-contained page that reads as a letter to the person:
// no script, no external resource (a Content-Security-Policy forbids any), inline styles only.
// The records are written one at a time, as they are read.
func WriteHTML(w io.Writer, doc *Document) error {
	var rowsErr error
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
		for i := range s.Locations {
			loc := &s.Locations[i]
			hasKey, names := loc.columns()
			header := cleanAll(names)
			if hasKey {
				header = append([]string{"key"}, header...)
			}
			hs.Tables = append(hs.Tables, htmlTable{Location: clean(loc.Location), Count: loc.Count(), Header: header,
				Rows: htmlRows(loc, &rowsErr)})
		}
		sort.SliceStable(hs.Tables, func(i, j int) bool { return hs.Tables[i].Location < hs.Tables[j].Location })
		view.Stores = append(view.Stores, hs)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := reportTemplate.Execute(bw, view); err != nil {
		return fmt.Errorf("rendering the HTML report: %w", err)
	}
	if rowsErr != nil {
		return fmt.Errorf("rendering the HTML report: %w", rowsErr)
	}
	return bw.Flush()
}

// htmlRows yields a location's records as rows of cleaned cells (the header is left out). The
// first error is kept in *errp and ends the rows.
func htmlRows(loc *Location, errp *error) iter.Seq[[]string] {
	return func(yield func([]string) bool) {
		header := true
		err := locationRows(loc, func(row []string) error {
			if header {
				header = false
				return nil
			}
			for i := range row {
				row[i] = clean(row[i])
			}
			if !yield(row) {
				return errStopped
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopped) && *errp == nil {
			*errp = err
		}
	}
}

// errStopped ends reading a location's records when the template stops ranging over them.
var errStopped = errors.New("stopped")

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
