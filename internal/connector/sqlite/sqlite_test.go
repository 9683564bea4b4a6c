package sqlite

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
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
		Unreachable:         func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing.db") },
		Malformed:           "file:store.db?_pragma=%zz",
		LowerFoldsASCIIOnly: true,
		EmailIndexDDL:       `CREATE INDEX "people_email_norm" ON "people" (lower(trim("email")))`,
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

func TestDisabledRefusesBeforeOpening(t *testing.T) {
	SetEnabled(false)
	defer SetEnabled(true)
	p, err := connector.ProviderFor(privacyv1alpha1.StoreTypeSQLite)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "never-created.db")
	_, err = p.NewClient(context.Background(), connector.Config{Secret: []byte(path + "?mode=rwc"), Spec: &privacyv1alpha1.DataStoreSpec{
		Type:   privacyv1alpha1.StoreTypeSQLite,
		Tables: []privacyv1alpha1.TableMapping{{Name: "t", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{{Column: "c", Identifier: "email"}}}},
	}})
	if connector.KindOf(err) != connector.KindInvalid || err == nil || !strings.Contains(err.Error(), "--enable-sqlite-stores") {
		t.Fatalf("disabled sqlite: %v", err)
	}
	if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
		t.Fatalf("the path was opened: %v", statErr)
	}
}
