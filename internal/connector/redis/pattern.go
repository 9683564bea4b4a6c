package redis

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// KeyPatternRE is the CRD's validation pattern of KeyMapping.Pattern. It is repeated here, and a
// test holds it equal to the generated CRD, because a ClusterDataStore written before a schema
// change was never checked against the current one, and the escaping below is only sound for
// patterns it accepts: no glob character but one trailing '*', braces only around placeholders.
const KeyPatternRE = `^([^*?\[\]{}\\\s]|\{[A-Za-z][A-Za-z0-9_.-]*\})*\{[A-Za-z][A-Za-z0-9_.-]*\}([^*?\[\]{}\\\s]|\{[A-Za-z][A-Za-z0-9_.-]*\})*([^*?\[\]{}\\\s}]\*)?$`

// maxPatternLength is the CRD's MaxLength of a key pattern.
const maxPatternLength = 512

var keyPatternRE = regexp.MustCompile(KeyPatternRE)

// pattern is a parsed key pattern: literal parts and placeholders, and whether it ends in a glob.
type pattern struct {
	source string
	parts  []part
	glob   bool
}

// part is either a literal or a placeholder (the name of an identifier).
type part = connector.TemplatePart

// parsePattern accepts exactly what the CRD accepts.
func parsePattern(src string) (*pattern, error) {
	if len(src) > maxPatternLength {
		return nil, fmt.Errorf("key pattern of %d bytes is longer than %d", len(src), maxPatternLength)
	}
	if !keyPatternRE.MatchString(src) {
		return nil, fmt.Errorf("key pattern %q is not valid: it needs at least one {identifier} placeholder, braces only around a placeholder, no whitespace, and no glob character except one trailing '*' after a separator, e.g. \"session:{userId}:*\"", src)
	}
	p := &pattern{source: src}
	body := src
	if strings.HasSuffix(body, "*") {
		body, p.glob = body[:len(body)-1], true
	}
	p.parts = connector.SplitTemplate(body)
	return p, nil
}

// ambiguousError says a value holds the separator that follows its placeholder in a glob pattern:
// "session:{userId}:*" with userId "a:b" would also match the keys of a user "a:b:c", so the
// pattern is not used for this subject. It names the identifier, never its value.
type ambiguousError struct{ identifier, separator, pattern string }

func (e *ambiguousError) Error() string {
	return fmt.Sprintf("the identifier %q contains %q, the separator after its placeholder in key pattern %q: the keys the pattern would match could be someone else's, so nothing was done; map such keys with a different separator", e.identifier, e.separator, e.pattern)
}

// expand fills in the identifiers. For a glob pattern it returns a SCAN MATCH pattern with the
// values escaped; otherwise the exact key. ok is false, and the pattern does not apply to the
// subject, when the subject lacks an identifier the pattern names or it is empty. An
// *ambiguousError refuses a glob pattern whose separator is inside a value.
func (p *pattern) expand(ids connector.Identifiers) (string, bool, error) {
	for _, pt := range p.parts {
		if pt.Placeholder != "" && ids[pt.Placeholder] == "" {
			return "", false, nil
		}
	}
	if p.glob {
		for i, pt := range p.parts {
			if sep := p.separatorAfter(i); sep != "" && strings.Contains(ids[pt.Placeholder], sep) {
				return "", false, &ambiguousError{identifier: pt.Placeholder, separator: sep, pattern: p.source}
			}
		}
	}
	var b strings.Builder
	for _, pt := range p.parts {
		switch {
		case pt.Placeholder == "":
			b.WriteString(pt.Literal)
		case p.glob:
			b.WriteString(escapeGlob(ids[pt.Placeholder]))
		default:
			b.WriteString(ids[pt.Placeholder])
		}
	}
	if p.glob {
		b.WriteByte('*')
	}
	return b.String(), true, nil
}

// separatorAfter is the first byte of the literal that follows placeholder part i, or "".
func (p *pattern) separatorAfter(i int) string {
	if p.parts[i].Placeholder == "" || i+1 >= len(p.parts) || p.parts[i+1].Placeholder != "" {
		return ""
	}
	return p.parts[i+1].Literal[:1]
}

// probeKey is a key of the pattern's shape that no subject has: every placeholder is token and
// the glob is a literal suffix. Check runs the connector's commands on it, so that an ACL that
// confines the user to some key patterns is tested against the mapped ones.
func (p *pattern) probeKey(token string) string {
	var b strings.Builder
	for _, pt := range p.parts {
		if pt.Placeholder != "" {
			b.WriteString(token)
		} else {
			b.WriteString(pt.Literal)
		}
	}
	if p.glob {
		b.WriteString(token)
	}
	return b.String()
}

// warnings are the pattern's risks that Check reports: separators that identifiers often contain
// (a subject "a" with "user.{id}.*" also matches the keys of a subject "a.b"), and adjacent
// placeholders (two subjects' values can form the same key).
func (p *pattern) warnings() []string {
	var out []string
	for i, pt := range p.parts {
		if pt.Placeholder == "" {
			continue
		}
		if i+1 < len(p.parts) && p.parts[i+1].Placeholder != "" {
			out = append(out, fmt.Sprintf("key pattern %q: placeholders {%s} and {%s} are adjacent, so different identifier values can form the same key", p.source, pt.Placeholder, p.parts[i+1].Placeholder))
		}
		if sep := p.separatorAfter(i); p.glob && sep != "" && commonInValues(sep[0]) {
			out = append(out, fmt.Sprintf("key pattern %q: identifier values often contain %q, the separator after {%s}: a subject whose value contains it is refused, and a subject whose value is the start of another's up to it (\"a\" and \"a%sb\") matches the other's keys; prefer a separator such as ':'", p.source, sep, pt.Placeholder, sep))
		}
	}
	return out
}

// commonInValues reports whether identifier values (emails, names, UUIDs, phone numbers) often
// hold c.
func commonInValues(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".@-_+'", c) >= 0 || c >= 0x80
}

// escapeGlob makes s match only itself in Redis's glob matching (stringmatchlen): every byte that
// is special anywhere in a pattern gets a backslash. '^' and '-' are only special inside a class,
// which an escaped '[' never opens; they are escaped anyway so that the output is safe on its own.
func escapeGlob(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
