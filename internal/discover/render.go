package discover

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// Header is what the proposal's manifest says outside spec.tables.
type Header struct {
	// Name and Namespace of the DataStore; Namespace may be empty.
	Name      string
	Namespace string
	// SecretName and SecretKey of the connection's Secret.
	SecretName string
	SecretKey  string
	// Known are the identifier names the proposal matches.
	Known []string
}

// Render writes the proposal as a commented DataStore manifest that the API server accepts as
// it is. Everything but the manifest is a YAML comment.
func Render(w io.Writer, p *Proposal, h Header) error {
	bw := bufio.NewWriter(w)
	out := &writer{w: bw}
	out.comment("", "DataStore proposed by `kubectl dsr discover` from the catalog of a "+string(p.Type)+
		" database (tables, columns, foreign keys, indexes; no row was read). Review it before applying: every choice is explained above its listing.")
	out.comment("", "Matched identifiers of the requests' identifiers Secret: "+strings.Join(h.Known, ", ")+
		". Identifiers named in provides are derived from the subject's rows (linked data): each value found in such a column becomes a value of the identifier that other listings match.")
	out.comment("", "A row reached only through a derived value that a row of someone else also holds is shared: the operator neither deletes nor masks it.")
	out.line("apiVersion: " + privacyv1alpha1.GroupVersion.String())
	out.line("kind: DataStore")
	out.line("metadata:")
	out.line("  name: " + scalar(h.Name))
	if h.Namespace != "" {
		out.line("  namespace: " + scalar(h.Namespace))
	}
	out.line("spec:")
	out.line("  type: " + string(p.Type))
	out.line("  connection:")
	out.line(fmt.Sprintf("    secretRef: {name: %s, key: %s}", scalar(h.SecretName), scalar(h.SecretKey)))
	out.line("  tables:")
	for _, l := range p.Listings {
		writeListing(out, l)
	}
	if len(p.Notes) > 0 {
		out.line("")
		out.comment("", "Not mapped, or to review:")
		for _, n := range p.Notes {
			out.comment("", "- "+n)
		}
	}
	if out.err != nil {
		return out.err
	}
	return bw.Flush()
}

func writeListing(out *writer, l *Listing) {
	m := l.Mapping
	out.line("")
	out.comment("  ", fmt.Sprintf("%s: %s.", m.Name, m.Action))
	for _, why := range l.Why {
		out.comment("  ", why)
	}
	for _, warn := range l.Warnings {
		out.comment("  ", "WARNING: "+warn)
	}
	out.line("  - name: " + scalar(m.Name))
	out.line("    match:")
	for _, c := range m.Match {
		out.line(fmt.Sprintf("    - {column: %s, identifier: %s}", scalar(c.Column), scalar(c.Identifier)))
	}
	if len(m.Provides) > 0 {
		out.line("    provides:")
		for _, pr := range m.Provides {
			out.line(fmt.Sprintf("    - {identifier: %s, column: %s}", scalar(pr.Identifier), scalar(pr.Column)))
		}
	}
	out.line("    action: " + string(m.Action))
	if len(m.Mask) > 0 {
		out.line("    mask:")
		for _, c := range m.Mask {
			out.line(fmt.Sprintf("    - {column: %s, strategy: %s}", scalar(c.Column), c.Strategy))
		}
	}
}

type writer struct {
	w   *bufio.Writer
	err error
}

func (w *writer) line(s string) {
	if w.err == nil {
		_, w.err = w.w.WriteString(s + "\n")
	}
}

// comment writes text as comment lines of at most about 100 characters, with any control
// character (a newline in a catalog name) taken out so that nothing can leave the comment.
func (w *writer) comment(indent, text string) {
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
	const width = 100
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(indent)+2+len(line)+1+len(word) > width {
			w.line(indent + "# " + line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		w.line(indent + "# " + line)
	}
}

var plainScalar = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// yamlWords are read as booleans or null by YAML 1.1 parsers when plain.
var yamlWords = map[string]bool{"y": true, "n": true, "yes": true, "no": true, "true": true, "false": true,
	"on": true, "off": true, "null": true}

// scalar is s as a YAML scalar: plain when it cannot be read as anything but that string,
// double-quoted otherwise.
func scalar(s string) string {
	if plainScalar.MatchString(s) && !yamlWords[strings.ToLower(s)] {
		return s
	}
	return fmt.Sprintf("%q", s)
}
