package discovertest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/mysql"
	"github.com/dsr-operator/dsr-operator/internal/connector/postgres"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlite"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// Shop is the shop created in a fresh database of one engine.
type Shop struct {
	Type    privacyv1alpha1.StoreType
	Dialect sqlstore.Dialect
	// DSN is what a DataStore's Secret would hold, and what discover is given.
	DSN string
	// Enforcing is DSN with foreign keys enforced on every connection (SQLite needs a pragma;
	// the servers always enforce them).
	Enforcing string
	// Raw is a connection for setting up and inspecting the shop.
	Raw *sql.DB
}

// Engines are the engines the shop is tested on.
var Engines = []privacyv1alpha1.StoreType{privacyv1alpha1.StoreTypePostgres, privacyv1alpha1.StoreTypeMySQL, privacyv1alpha1.StoreTypeSQLite}

// NewShop creates the shop in a fresh database of typ: a private PostgreSQL or MariaDB server of
// internal/teststore, or a SQLite file in the test's temporary directory. Call
// teststore.CloseShared from TestMain.
func NewShop(t *testing.T, typ privacyv1alpha1.StoreType) *Shop {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &Shop{Type: typ}
	var err error
	switch typ {
	case privacyv1alpha1.StoreTypePostgres:
		s.Dialect = postgres.Dialect{}
		s.DSN, err = teststore.SharedPostgres(t).CreateDatabase(ctx, "")
		s.Enforcing = s.DSN
	case privacyv1alpha1.StoreTypeMySQL:
		s.Dialect = mysql.Dialect{}
		s.DSN, err = teststore.SharedMariaDB(t).CreateDatabase(ctx, "")
		s.Enforcing = s.DSN
	case privacyv1alpha1.StoreTypeSQLite:
		s.Dialect = sqlite.Dialect{}
		s.DSN = filepath.Join(t.TempDir(), "shop.db")
		err = os.WriteFile(s.DSN, nil, 0o600)
		s.Enforcing = "file:" + (&url.URL{Path: s.DSN}).EscapedPath() + "?_pragma=foreign_keys(1)"
	default:
		t.Fatalf("no shop on %s", typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Raw, err = s.Dialect.Open([]byte(s.Enforcing), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Raw.Close() })
	if err := Create(ctx, s.Raw, s.Dialect.Placeholder); err != nil {
		t.Fatal(err)
	}
	return s
}
