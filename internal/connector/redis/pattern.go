package redis

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// pattern is a parsed key pattern: literal parts and placeholders, and whether it ends in a glob.
type pattern struct {
	source string
	parts  []part
	glob   bool
}

type part struct {
	literal     string
	placeholder string
}

var (
	placeholderRE = regexp.MustCompile(`\{([A-Za-z][A-Za-z0-9_.-]*)\}`)
	globChars     = "*?[]\\"
)

// parsePattern validates a key pattern: at least one placeholder, no glob character but one
// trailing '*' after a separator. The CRD checks the same; this guards ClusterDataStores written
// before a schema change, and keeps the escaping below sound.
func parsePattern(src string) (*pattern, error) {
	p := &pattern{source: src}
	body := src
	if strings.HasSuffix(body, "*") {
		body = body[:len(body)-1]
		p.glob = true
		if body == "" || strings.HasSuffix(body, "}") {
			return nil, fmt.Errorf("key pattern %q: a glob must follow a separator, e.g. \"session:{userId}:*\"", src)
		}
	}
	rest := body
	for rest != "" {
		loc := placeholderRE.FindStringSubmatchIndex(rest)
		if loc == nil {
			p.parts = append(p.parts, part{literal: rest})
			break
		}
		if loc[0] > 0 {
			p.parts = append(p.parts, part{literal: rest[:loc[0]]})
		}
		p.parts = append(p.parts, part{placeholder: rest[loc[2]:loc[3]]})
		rest = rest[loc[1]:]
	}
	placeholders := 0
	for _, pt := range p.parts {
		if pt.placeholder != "" {
			placeholders++
			continue
		}
		if strings.ContainsAny(pt.literal, globChars+"{} \t\r\n") {
			return nil, fmt.Errorf("key pattern %q: only a trailing '*' may be a glob, and braces only enclose a placeholder", src)
		}
	}
	if placeholders == 0 {
		return nil, fmt.Errorf("key pattern %q has no {identifier} placeholder: it would match every subject's keys", src)
	}
	return p, nil
}

// ambiguousError says a value holds the separator that follows its placeholder in a glob pattern:
// "session:{userId}:*" with userId "a:b" would also match the keys of a user "a:b:c", so the
// pattern is not used for this subject.
type ambiguousError struct{ identifier, separator, pattern string }

func (e *ambiguousError) Error() string {
	return fmt.Sprintf("the identifier %q contains %q, the separator after its placeholder in key pattern %q: the keys it would match are ambiguous, so the pattern was not applied", e.identifier, e.separator, e.pattern)
}

// expand fills in the identifiers. For a glob pattern it returns a SCAN MATCH pattern with the
// values escaped; otherwise the exact key. ok is false when the subject lacks an identifier the
// pattern needs.
func (p *pattern) expand(ids connector.Identifiers) (string, bool) {
	s, ok, _ := p.expandChecked(ids)
	return s, ok
}

// expandChecked is expand that also refuses ambiguous glob matches.
func (p *pattern) expandChecked(ids connector.Identifiers) (string, bool, error) {
	if p.glob {
		for i, pt := range p.parts {
			if pt.placeholder == "" {
				continue
			}
			sep := ""
			if i+1 < len(p.parts) && p.parts[i+1].placeholder == "" {
				sep = p.parts[i+1].literal[:1]
			}
			if v, ok := ids[pt.placeholder]; ok && sep != "" && strings.Contains(v, sep) {
				return "", false, &ambiguousError{identifier: pt.placeholder, separator: sep, pattern: p.source}
			}
		}
	}
	var b strings.Builder
	for _, pt := range p.parts {
		if pt.placeholder == "" {
			b.WriteString(pt.literal)
			continue
		}
		v, ok := ids[pt.placeholder]
		if !ok || v == "" {
			return "", false, nil
		}
		if p.glob {
			b.WriteString(escapeGlob(v))
		} else {
			b.WriteString(v)
		}
	}
	if p.glob {
		b.WriteByte('*')
	}
	return b.String(), true, nil
}

// escapeGlob makes s match only itself in Redis's glob matching (stringmatchlen): every special
// character is preceded by a backslash.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}
