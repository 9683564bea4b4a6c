package discover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/mysql"
	"github.com/dsr-operator/dsr-operator/internal/connector/postgres"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlite"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// DialectFor is the connector's dialect of a SQL store type.
func DialectFor(typ privacyv1alpha1.StoreType) (sqlstore.Dialect, error) {
	switch typ {
	case privacyv1alpha1.StoreTypePostgres:
		return postgres.Dialect{}, nil
	case privacyv1alpha1.StoreTypeMySQL:
		return mysql.Dialect{}, nil
	case privacyv1alpha1.StoreTypeSQLite:
		return sqlite.Dialect{}, nil
	}
	return nil, fmt.Errorf("discover reads postgres, mysql and sqlite databases, not %q", typ)
}

// DetectType guesses the store type from the form of a DSN, as a DataStore's Secret holds it: a
// postgres:// URL or key=value string, a go-sql-driver DSN (user:password@tcp(host)/db), or a
// SQLite path. It never returns the DSN in an error.
func DetectType(dsn string) (privacyv1alpha1.StoreType, error) {
	s := strings.TrimSpace(dsn)
	lowered := strings.ToLower(s)
	switch {
	case s == "":
		return "", errors.New("the DSN is empty")
	case strings.HasPrefix(lowered, "mongodb://") || strings.HasPrefix(lowered, "mongodb+srv://"):
		return privacyv1alpha1.StoreTypeMongoDB, nil
	case strings.HasPrefix(lowered, "postgres://") || strings.HasPrefix(lowered, "postgresql://"):
		return privacyv1alpha1.StoreTypePostgres, nil
	case strings.Contains(lowered, "host=") || strings.Contains(lowered, "dbname="):
		return privacyv1alpha1.StoreTypePostgres, nil
	case strings.Contains(s, "@tcp(") || strings.Contains(s, "@unix(") || strings.Contains(s, "@/"):
		return privacyv1alpha1.StoreTypeMySQL, nil
	case strings.HasPrefix(lowered, "file:") || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") ||
		strings.HasSuffix(lowered, ".db") || strings.HasSuffix(lowered, ".sqlite") || strings.HasSuffix(lowered, ".sqlite3"):
		return privacyv1alpha1.StoreTypeSQLite, nil
	}
	return "", errors.New("cannot tell the database type from the DSN's form; pass --type postgres, mysql, sqlite or mongodb")
}

// Open opens the database with the connector's own dialect (and so its DSN rules). A SQLite file
// is opened read-only: discover changes nothing. Errors never repeat the DSN.
func Open(typ privacyv1alpha1.StoreType, dsn string) (*sql.DB, sqlstore.Dialect, error) {
	d, err := DialectFor(typ)
	if err != nil {
		return nil, nil, err
	}
	secret := strings.TrimSpace(dsn)
	if typ == privacyv1alpha1.StoreTypeSQLite {
		secret = readOnlySQLite(secret)
	}
	db, err := d.Open([]byte(secret), nil)
	if err != nil {
		return nil, nil, errors.New(Summary(d, "connect", err))
	}
	return db, d, nil
}

// readOnlySQLite turns a path or file: URI into a read-only URI.
func readOnlySQLite(s string) string {
	var base, query string
	if strings.HasPrefix(s, "file:") {
		base, query, _ = strings.Cut(s, "?")
	} else {
		base = "file:" + (&url.URL{Path: s}).EscapedPath()
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return s // the dialect refuses it with its own message
	}
	params.Set("mode", "ro")
	return base + "?" + params.Encode()
}

// Summary is a database failure as the operator's status shows it: kind, code and the
// connector's own hint, never the driver's text (which can name hosts and users).
func Summary(d sqlstore.Dialect, op string, err error) string {
	return connector.Summary(sqlstore.Classify(d, op, "", err, nil))
}

// Discover connects, reads the catalog and proposes a mapping.
func Discover(ctx context.Context, typ privacyv1alpha1.StoreType, dsn string, opts Options) (*Proposal, error) {
	db, d, err := Open(typ, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.New(Summary(d, "connect", err))
	}
	cat, err := ReadCatalog(ctx, d, db)
	if err != nil {
		return nil, errors.New(Summary(d, "read catalog", err))
	}
	return Propose(cat, d, opts)
}
