package sqlstore

import (
	"fmt"
	"regexp"
	"strings"
)

// namePattern is the CRD's pattern for table names; column names are its unqualified half. The
// builders re-check every name against it, so a spec that bypassed admission (or a bug upstream)
// can never smuggle SQL through an identifier.
var (
	tableNamePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)
	columnNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Identifier length limits of the CRD (a schema-qualified table name is two 63-byte parts).
const (
	maxColumnName = 63
	maxTableName  = 127
)

// TableName is a validated, optionally schema-qualified table name.
type TableName struct {
	// Schema is empty when the name is unqualified: the connection's default schema (postgres
	// search_path, the DSN's MySQL database, SQLite's main database) applies.
	Schema string
	Table  string
}

// String is the name as the spec spells it; it is what locations report.
func (n TableName) String() string {
	if n.Schema == "" {
		return n.Table
	}
	return n.Schema + "." + n.Table
}

// ParseTableName validates a spec table name.
func ParseTableName(name string) (TableName, error) {
	if len(name) > maxTableName || !tableNamePattern.MatchString(name) {
		return TableName{}, fmt.Errorf("table name %q is not a valid identifier (letters, digits, _; optionally schema.table)", name)
	}
	schema, table, qualified := strings.Cut(name, ".")
	if !qualified {
		return TableName{Table: name}, nil
	}
	return TableName{Schema: schema, Table: table}, nil
}

// ValidateColumnName validates a spec column name.
func ValidateColumnName(name string) error {
	if len(name) > maxColumnName || !columnNamePattern.MatchString(name) {
		return fmt.Errorf("column name %q is not a valid identifier (letters, digits, _)", name)
	}
	return nil
}

// QuoteTable validates name and quotes each part for the dialect.
func QuoteTable(d Dialect, name TableName) (string, error) {
	if _, err := ParseTableName(name.String()); err != nil {
		return "", err
	}
	if name.Schema == "" {
		return d.QuoteIdent(name.Table), nil
	}
	return d.QuoteIdent(name.Schema) + "." + d.QuoteIdent(name.Table), nil
}

// QuoteColumn validates name and quotes it for the dialect.
func QuoteColumn(d Dialect, name string) (string, error) {
	if err := ValidateColumnName(name); err != nil {
		return "", err
	}
	return d.QuoteIdent(name), nil
}

// QuoteWith quotes one identifier by wrapping it in quote and doubling any quote inside, the rule
// shared by ANSI double quotes and MySQL backticks. Validation already refuses such names; the
// doubling is the second line of defence.
func QuoteWith(quote, name string) string {
	return quote + strings.ReplaceAll(name, quote, quote+quote) + quote
}
