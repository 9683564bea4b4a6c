package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore/sqltest"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	teststore.CloseShared()
	os.Exit(code)
}

func newDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := teststore.SharedPostgres(t).CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// freePort is a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

func harness(t *testing.T) sqltest.Harness {
	server := teststore.SharedPostgres(t)
	return sqltest.Harness{
		Dialect:     Dialect{},
		NewDatabase: newDatabase,
		Server:      server,
		WrongPassword: func(dsn string) string {
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			u.User = url.UserPassword(u.User.Username(), "wrong-password")
			return u.String()
		},
		Unreachable: func(t *testing.T) string {
			return fmt.Sprintf("postgres://dsr:pw@127.0.0.1:%d/db?sslmode=disable&connect_timeout=5", freePort(t))
		},
		Malformed: "postgres://dsr:secret@127.0.0.1:notaport/db",
		NewSchema: func(t *testing.T, raw *sql.DB) string {
			name := fmt.Sprintf("app_%d", time.Now().UnixNano()%1e9)
			if _, err := raw.Exec("CREATE SCHEMA " + name); err != nil {
				t.Fatal(err)
			}
			return name
		},
		RejectsNUL: true,
		// teststore runs initdb with --locale=C.
		LowerFoldsASCIIOnly: true,
		EmailIndexDDL:       `CREATE INDEX "people_email_norm" ON "people" ((lower(trim("email"))))`,
	}
}

func TestConformance(t *testing.T) {
	sqltest.RunConformance(t, harness(t))
}

func FuzzQueries(f *testing.F) {
	sqltest.FuzzQueries(f, Dialect{},
		sqlstore.Column{Type: "text", Text: true, Searchable: true},
		sqlstore.Column{Type: "int8"})
}

func TestLinked(t *testing.T) {
	sqltest.RunLinked(t, harness(t), nil)
}
