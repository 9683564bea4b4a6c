package postgres

import (
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// allowedKeys are the connection string keys a store's DSN may set; pgx refuses every other one
// before it reads a file or resolves a name. Refused on purpose: sslkey, sslcert, sslrootcert,
// sslpassword, passfile, service and servicefile read files of the operator's;
// default_query_exec_mode could make pgx splice values into SQL text; and any unknown key would
// become a server run-time parameter.
var allowedKeys = []string{
	"host", "hostaddr", "port", "dbname", "user", "password",
	"sslmode", "ssl", "sslnegotiation", "sslsni",
	"connect_timeout", "target_session_attrs",
	"application_name", "search_path", "options",
	"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "timezone",
}

// AllowedKeys lists allowedKeys, sorted, for docs and messages.
func AllowedKeys() []string {
	keys := append([]string(nil), allowedKeys...)
	sort.Strings(keys)
	return keys
}

// refusedKey is how pgx names a key outside ConnStringAllowedKeys. Only a key that looks like
// one is repeated: a garbled DSN could put a password where a key belongs.
var refusedKey = regexp.MustCompile(`connection string key "([A-Za-z0-9_]{1,64})" is not in ConnStringAllowedKeys`)

// parseDSN parses a libpq URL or keyword/value DSN with allowedKeys only. Its errors never
// quote the DSN, which may hold the password.
func parseDSN(dsn string) (*pgx.ConnConfig, error) {
	const op = "connect"
	if dsn == "" {
		// libpq reads an empty DSN as "all defaults": localhost, the OS user. Never what was meant.
		return nil, connector.Errorf(connector.KindInvalid, op, "the postgres DSN is empty")
	}
	cfg, err := pgx.ParseConfigWithOptions(dsn, pgx.ParseConfigOptions{
		ParseConfigOptions: pgconn.ParseConfigOptions{ConnStringAllowedKeys: allowedKeys},
	})
	if err != nil {
		if m := refusedKey.FindStringSubmatch(err.Error()); m != nil {
			return nil, connector.Errorf(connector.KindInvalid, op,
				"the postgres DSN parameter %q is not supported; allowed: %s", m[1], strings.Join(AllowedKeys(), ", "))
		}
		// pgx's parse errors can quote the DSN, password included.
		return nil, connector.Errorf(connector.KindInvalid, op, "the postgres DSN cannot be parsed")
	}
	return cfg, nil
}
