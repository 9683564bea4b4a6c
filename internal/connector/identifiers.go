package connector

import (
	"sort"
	"strings"
)

// Identifiers are a subject's identifiers by name (email, userId, phone, ...). The type refuses to
// print itself, so that a stray log line or %v cannot leak them.
type Identifiers map[string]string

const redacted = "[redacted identifiers]"

// String hides the values.
func (Identifiers) String() string { return redacted }

// GoString hides the values from %#v.
func (Identifiers) GoString() string { return redacted }

// MarshalLog hides the values from logr.
func (Identifiers) MarshalLog() any { return redacted }

// Names returns the identifier names, sorted.
func (ids Identifiers) Names() []string {
	names := make([]string, 0, len(ids))
	for name := range ids {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Scrub replaces every identifier value in msg by "[identifier]", for messages that come from a
// store or driver and may echo a value back. Longer values go first so that one value containing
// another is scrubbed whole.
func (ids Identifiers) Scrub(msg string) string {
	values := make([]string, 0, len(ids))
	for _, v := range ids {
		if v != "" {
			values = append(values, v)
		}
	}
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	for _, v := range values {
		msg = strings.ReplaceAll(msg, v, "[identifier]")
	}
	return msg
}
