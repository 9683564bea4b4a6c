package s3

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// KeyRE is the CRD's validation pattern of ObjectMapping.Key: at least one {identifier}
// placeholder, braces only around placeholders, no control characters.
const KeyRE = `^([^{}\x00-\x1f]|\{[A-Za-z][A-Za-z0-9_.-]*\})*\{[A-Za-z][A-Za-z0-9_.-]*\}([^{}\x00-\x1f]|\{[A-Za-z][A-Za-z0-9_.-]*\})*$`

// BucketRE is the CRD's validation pattern of ObjectMapping.Bucket.
const BucketRE = `^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`

// maxKeyBytes is the longest object key S3 stores; a longer expansion names no object.
const maxKeyBytes = 1024

var (
	keyRE    = regexp.MustCompile(KeyRE)
	bucketRE = regexp.MustCompile(BucketRE)
)

// keyTemplate is a parsed ObjectMapping.Key: literal parts and placeholders; prefix is true when
// the key ends in "/" and so means every object under it.
type keyTemplate struct {
	source string
	parts  []part
	prefix bool
}

type part = connector.TemplatePart

func parseKey(src string) (*keyTemplate, error) {
	if len(src) > maxKeyBytes {
		return nil, fmt.Errorf("key of %d bytes is longer than %d", len(src), maxKeyBytes)
	}
	if !keyRE.MatchString(src) || !utf8.ValidString(src) {
		return nil, fmt.Errorf("key %q is not valid: it needs at least one {identifier} placeholder, braces only around a placeholder, and no control character, e.g. \"users/{userId}/\"", src)
	}
	return &keyTemplate{source: src, prefix: strings.HasSuffix(src, "/"), parts: connector.SplitTemplate(src)}, nil
}

// names are the template's placeholders in order, repeats included.
func (t *keyTemplate) names() []string { return connector.TemplateNames(t.source) }

// hostileValueError refuses a value that would change the key's structure. It names the
// identifier and the rule, never the value.
type hostileValueError struct{ identifier, key, why string }

func (e *hostileValueError) Error() string {
	return fmt.Sprintf("the identifier %q %s, so key %q could name objects of someone else: nothing was done for this mapping", e.identifier, e.why, e.key)
}

// checkValue refuses values that are not one literal path segment: S3 keys are plain strings,
// but "/" would move the key into another folder (a user "42/x" reaching into the folder of user
// "42"), and "." or ".." are resolved as path steps by file-backed servers and some proxies.
func checkValue(v string) string {
	switch {
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	case v == "." || v == "..":
		return `is "." or ".."`
	case strings.Contains(v, "/"):
		return `contains "/"`
	case strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return "contains a control character"
	}
	return ""
}

// expand fills the placeholders in. ok is false when the subject lacks an identifier the key
// names. A value that would change the key's structure is a *hostileValueError.
func (t *keyTemplate) expand(ids connector.Identifiers) (key string, ok bool, err error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.Placeholder == "" {
			b.WriteString(p.Literal)
			continue
		}
		v := ids[p.Placeholder]
		if v == "" {
			return "", false, nil
		}
		if why := checkValue(v); why != "" {
			return "", false, &hostileValueError{identifier: p.Placeholder, key: t.source, why: why}
		}
		b.WriteString(v)
	}
	return b.String(), true, nil
}

// expansions are the single-valued identifier sets a template is expanded with: every
// combination of the values of the identifiers it names.
func expansions(t *keyTemplate, all connector.Values) []connector.Identifiers {
	return connector.Expansions(t.names(), all)
}

// target is one expanded key of one mapping: an exact key, or a prefix.
type target struct {
	bucket string
	key    string
	prefix bool
}

// covers reports whether the object bucket/key falls under t.
func (t target) covers(bucket, key string) bool {
	if bucket != t.bucket {
		return false
	}
	if t.prefix {
		return strings.HasPrefix(key, t.key)
	}
	return key == t.key
}
