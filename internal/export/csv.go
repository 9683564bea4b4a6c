package export

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// RenderCSV renders the document as a zip in memory (see WriteCSV).
func RenderCSV(doc *Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteCSV writes the document as a zip: about.csv (the request and the Art. 15 context, one row
// per fact), one CSV per store and location (the records, one row each, a column per field) and
// missing.csv. Every cell is neutralised against formula injection and control characters. The
// records are written one at a time, as they are read.
func WriteCSV(out io.Writer, doc *Document) error {
	bw := bufio.NewWriterSize(out, 64<<10)
	zw := zip.NewWriter(bw)
	write := func(name string, rows func(row func([]string) error) error) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: doc.GeneratedAt})
		if err != nil {
			return err
		}
		cw := csv.NewWriter(w)
		cw.UseCRLF = true // RFC 4180, and what spreadsheet programs expect
		err = rows(func(row []string) error {
			for i := range row {
				row[i] = SafeCell(row[i])
			}
			return cw.Write(row)
		})
		if err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	}
	all := func(rows [][]string) func(func([]string) error) error {
		return func(row func([]string) error) error {
			for _, r := range rows {
				if err := row(r); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if err := write("about.csv", all(aboutRows(doc))); err != nil {
		return fmt.Errorf("writing about.csv: %w", err)
	}
	missing := [][]string{{"store", "item", "article", "description"}}
	for _, m := range doc.Missing {
		missing = append(missing, []string{m.Store, m.Item, m.Article, m.Description})
	}
	if err := write("missing.csv", all(missing)); err != nil {
		return fmt.Errorf("writing missing.csv: %w", err)
	}
	used := map[string]bool{}
	for _, s := range doc.Stores {
		for i := range s.Locations {
			loc := &s.Locations[i]
			name := uniqueName(used, "records/"+fileSafe(s.Kind+"-"+s.Name)+"/"+fileSafe(loc.Location), ".csv")
			if err := write(name, func(row func([]string) error) error { return locationRows(loc, row) }); err != nil {
				return fmt.Errorf("writing a location's CSV: %w", err)
			}
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// aboutRows is the request and the Art. 15 context as section, field, value rows.
func aboutRows(doc *Document) [][]string {
	rows := [][]string{{"section", "field", "value"},
		{"request", "namespace", doc.Request.Namespace}, {"request", "name", doc.Request.Name},
		{"request", "regulation", doc.Regulation}, {"request", "generatedAt", doc.GeneratedAt.Format("2006-01-02T15:04:05Z")},
		{"request", "recordCount", strconv.FormatInt(doc.RecordCount, 10)}, {"request", "summary", doc.Summary}}
	party := func(section string, p *Party) {
		if p == nil {
			return
		}
		for _, f := range [][2]string{{"name", p.Name}, {"address", p.Address}, {"email", p.Email}, {"phone", p.Phone}, {"url", p.URL}} {
			if f[1] != "" {
				rows = append(rows, []string{section, f[0], f[1]})
			}
		}
	}
	party("controller", doc.Controller)
	party("dataProtectionOfficer", doc.DataProtectionOfficer)
	party("supervisoryAuthority", doc.SupervisoryAuthority)
	for _, r := range doc.Rights {
		rows = append(rows, []string{"right", strings.TrimSpace(r.Name + " " + r.Article), r.Description})
	}
	for _, s := range doc.Stores {
		sec := "store " + s.Kind + "/" + s.Name
		add := func(field string, values ...string) {
			for _, v := range values {
				if v != "" {
					rows = append(rows, []string{sec, field, v})
				}
			}
		}
		add("description", s.Description)
		add("purpose", s.Purposes...)
		add("dataCategory", s.DataCategories...)
		add("retention", s.Retention)
		add("recipient", s.Recipients...)
		add("source", s.Source)
		add("automatedDecisionMaking", automatedText(s))
		add("thirdCountryTransfer", transferTexts(s)...)
		add("recordCount", strconv.FormatInt(s.RecordCount, 10))
	}
	return rows
}

// locationRows calls row with the header and then one row per record: the key (when the
// location has keys) and a column per field, the union of every record's fields, sorted. Values
// that are not strings are written as JSON. Each row is a new slice that row may keep or change.
func locationRows(loc *Location, row func([]string) error) error {
	hasKey, names := loc.columns()
	header := []string{}
	if hasKey {
		header = append(header, "key")
	}
	if err := row(append(header, names...)); err != nil {
		return err
	}
	return loc.each(func(r *Record) error {
		cells := make([]string, 0, len(names)+1)
		if hasKey {
			cells = append(cells, r.Key)
		}
		for _, f := range names {
			v, ok := r.Data[f]
			if !ok {
				cells = append(cells, "")
				continue
			}
			cells = append(cells, CellText(v))
		}
		return row(cells)
	})
}

// CellText is a record value as text: strings as they are, null as empty, anything else as JSON.
func CellText(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

// SafeCell neutralises a cell for spreadsheets: control characters become visible, and a cell
// that a spreadsheet would read as a formula (starting with = + - @, a tab or a carriage return,
// OWASP's CSV injection list) gets a leading single quote. Newlines stay: CSV quotes them.
func SafeCell(s string) string {
	s = VisibleControls(s, true)
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// VisibleControls replaces control characters by their Unicode control pictures (U+2400 block)
// or, for C1 controls, by U+FFFD, so that no terminal escape or NUL reaches a reader's screen.
// Tab, newline and (when keepCR) carriage return are kept.
func VisibleControls(s string, keepCR bool) string {
	clean := true
	for _, r := range s {
		if isControl(r, keepCR) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch {
		case !isControl(r, keepCR):
			b.WriteRune(r)
		case r < 0x20:
			b.WriteRune(0x2400 + r)
		case r == 0x7f:
			b.WriteRune(0x2421)
		default:
			b.WriteRune(0xfffd)
		}
	}
	return b.String()
}

func isControl(r rune, keepCR bool) bool {
	switch r {
	case '\t', '\n':
		return false
	case '\r':
		return !keepCR
	}
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileSafe makes a store or location name a safe zip entry name: no path separators, no "..",
// nothing a shell or an unzip tool reads specially.
func fileSafe(s string) string {
	s = strings.Trim(unsafeFileChars.ReplaceAllString(s, "_"), "._")
	if s == "" {
		s = "_"
	}
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// uniqueName returns base+ext, or base-2+ext and so on when two locations map to the same name.
func uniqueName(used map[string]bool, base, ext string) string {
	name := base + ext
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s-%d%s", base, i, ext)
	}
	used[name] = true
	return name
}

// automatedText is a store's automated decision-making in words (empty when not stated).
func automatedText(s Store) string {
	a := s.AutomatedDecisionMaking
	switch {
	case a == nil:
		return ""
	case !a.Used:
		return "No automated decisions or profiling."
	}
	text := "Used. Logic: " + a.Logic
	if a.Consequences != "" {
		text += " Consequences: " + a.Consequences
	}
	return text
}

// transferTexts are a store's third-country transfers in words (none when not stated).
func transferTexts(s Store) []string {
	t := s.ThirdCountries
	switch {
	case t == nil:
		return nil
	case t.None:
		return []string{"None: the data stays in the regulation's area."}
	}
	out := make([]string, 0, len(t.Transfers))
	for _, tr := range t.Transfers {
		to := tr.Destination
		if tr.Recipient != "" {
			to += " (" + tr.Recipient + ")"
		}
		out = append(out, to+"; safeguards: "+tr.Safeguards)
	}
	return out
}
