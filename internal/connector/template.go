package connector

import "regexp"

// A template is a string naming identifiers in braces: a Redis key pattern
// ("session:{userId}:*"), an S3 object key ("users/{userId}/"). The CRD validates each kind's
// syntax; this is the one reading of their placeholders.

// placeholderRE matches one placeholder; the name is its first group.
var placeholderRE = regexp.MustCompile(`\{([A-Za-z][A-Za-z0-9_.-]*)\}`)

// TemplatePart is a literal stretch of a template, or a placeholder (the name of an identifier).
type TemplatePart struct {
	Literal     string
	Placeholder string
}

// SplitTemplate splits src into its literals and placeholders, in order.
func SplitTemplate(src string) []TemplatePart {
	var parts []TemplatePart
	for src != "" {
		loc := placeholderRE.FindStringSubmatchIndex(src)
		if loc == nil {
			return append(parts, TemplatePart{Literal: src})
		}
		if loc[0] > 0 {
			parts = append(parts, TemplatePart{Literal: src[:loc[0]]})
		}
		parts = append(parts, TemplatePart{Placeholder: src[loc[2]:loc[3]]})
		src = src[loc[1]:]
	}
	return parts
}

// TemplateNames are the identifiers src names, in order, repeats included.
func TemplateNames(src string) []string {
	var names []string
	for _, m := range placeholderRE.FindAllStringSubmatch(src, -1) {
		names = append(names, m[1])
	}
	return names
}
