package sqlite

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore/sqltest"
)

func harness() sqltest.Harness {
	return sqltest.Harness{
		Dialect: Dialect{},
		NewDatabase: func(t *testing.T) string {
			// An empty file is a valid, empty SQLite database; the connector refuses to create one.
			path := filepath.Join(t.TempDir(), "store with space#1.db")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		},
		Unreachable: func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing.db") },
		Malformed:   "file:store.db?_pragma=%zz",
	}
}

func TestConformance(t *testing.T) {
	sqltest.RunConformance(t, harness())
}

func FuzzQueries(f *testing.F) {
	sqltest.FuzzQueries(f, Dialect{},
		sqlstore.Column{Type: "text", Text: true, Searchable: true},
		sqlstore.Column{Type: "integer"})
}

func TestLinked(t *testing.T) {
	sqltest.RunLinked(t, harness(), func(secret string) string {
		return "file:" + (&url.URL{Path: secret}).EscapedPath() + "?_pragma=foreign_keys(1)"
	})
}
