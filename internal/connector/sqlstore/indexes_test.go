package sqlstore

import "testing"

// The catalogs print one expression in several ways; each must be recognised as the prefilter's,
// and nothing else may be.
func TestCanonicalExprRecognisesTheCatalogsSpellings(t *testing.T) {
	want := canonicalExpr(lowerTrim("email"))
	for _, catalog := range []string{
		"lower(TRIM(BOTH FROM email))",         // PostgreSQL, text column
		"lower(TRIM(BOTH FROM (email)::text))", // PostgreSQL, varchar column
		`lower(btrim("email"))`,                // PostgreSQL, btrim
		"lcase(trim(`email`))",                 // MariaDB generation expression
		"lower(trim(`email`))",                 // MySQL generation expression
		`LOWER(TRIM("email"))`,                 // SQLite, from CREATE INDEX
		"lower( trim( email ) )",               // any white space
		"LOWER(TRIM((email)))",                 // redundant brackets
	} {
		if got := canonicalExpr(catalog); got != want {
			t.Errorf("%q: canonical %q, want %q", catalog, got, want)
		}
	}
	for _, other := range []string{
		"lower(email)", "trim(lower(email))", "lower(trim(email2))", "upper(trim(email))",
		"lower(trim(email)) collate nocase", "lower(ltrim(email))", "",
	} {
		if canonicalExpr(other) == want {
			t.Errorf("%q taken for lower(trim(email))", other)
		}
	}
}
