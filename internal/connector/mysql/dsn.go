package mysql

import (
	"net/url"
	"sort"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// allowedParams are the DSN parameters a store's DSN may set. Everything else is refused by name:
// among the driver's other parameters, allowAllFiles lets the server read any file of the
// operator's (LOAD DATA LOCAL INFILE), allowCleartextPasswords and allowOldPasswords weaken
// authentication, clientFoundRows and columnsWithAlias change what the connector reads back,
// and any unknown name becomes a session variable the driver sets on every connection.
var allowedParams = map[string]bool{
	"tls":                  true, // true, false, skip-verify, preferred: custom names are never registered
	"timeout":              true,
	"readTimeout":          true,
	"writeTimeout":         true,
	"charset":              true, // overridden: the connection is utf8mb4
	"collation":            true,
	"loc":                  true,
	"parseTime":            true, // overridden: true
	"interpolateParams":    true, // overridden: false
	"multiStatements":      true, // overridden: false
	"maxAllowedPacket":     true,
	"rejectReadOnly":       true,
	"checkConnLiveness":    true,
	"allowNativePasswords": true,
	"connectionAttributes": true,
}

// AllowedParams lists allowedParams, sorted, for docs and messages.
func AllowedParams() []string {
	names := make([]string, 0, len(allowedParams))
	for n := range allowedParams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// parseDSN parses a go-sql-driver DSN, refusing parameters outside allowedParams and networks
// other than TCP, and forces the settings the connector relies on. Its errors never quote the
// DSN, which holds the password.
func parseDSN(dsn string) (*mysql.Config, error) {
	const op = "connect"
	if dsn == "" {
		// The driver reads an empty DSN as root on 127.0.0.1:3306. Never what was meant.
		return nil, connector.Errorf(connector.KindInvalid, op, "the mysql DSN is empty")
	}
	if name, ok := firstRefusedParam(dsn); !ok {
		return nil, connector.Errorf(connector.KindInvalid, op,
			"the mysql DSN parameter %q is not supported; allowed: %s", name, strings.Join(AllowedParams(), ", "))
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's messages can quote parts of the DSN.
		return nil, connector.Errorf(connector.KindInvalid, op, "the mysql DSN cannot be parsed")
	}
	switch cfg.Net {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, connector.Errorf(connector.KindInvalid, op, "the mysql DSN must name a tcp(host:port) address, not a %q one", cfg.Net)
	}
	// Belt and braces: no parameter sets it any more, but a LOCAL INFILE request from the server
	// must never be answered with a file of the operator's.
	cfg.AllowAllFiles = false
	// Values must travel as bound parameters, never spliced into SQL text by the driver.
	cfg.InterpolateParams = false
	cfg.MultiStatements = false
	cfg.ParseTime = true
	// The exact comparisons compare the parameter's bytes with the column converted to utf8mb4:
	// the parameter has to arrive as utf8mb4 too.
	if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		return nil, connector.Errorf(connector.KindInvalid, op, "the mysql DSN cannot be used: %v", err)
	}
	return cfg, nil
}

// firstRefusedParam finds the query of the DSN as the driver does (after the last '/', up to
// its first '?') and returns the first parameter name that is not allowed. A name is quoted in
// the error only when it looks like one: a garbled DSN could put a password there.
func firstRefusedParam(dsn string) (string, bool) {
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		return "", true
	}
	_, query, found := strings.Cut(dsn[slash+1:], "?")
	if !found {
		return "", true
	}
	for pair := range strings.SplitSeq(query, "&") {
		name, _, hasValue := strings.Cut(pair, "=")
		if !hasValue || allowedParams[name] {
			// The driver ignores a pair without '='.
			continue
		}
		if unescaped, err := url.QueryUnescape(name); err != nil || !isParamName(unescaped) {
			return "(a parameter whose name is not a word)", false
		}
		return name, false
	}
	return "", true
}

func isParamName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
