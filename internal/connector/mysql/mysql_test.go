package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore/sqltest"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	teststore.CloseShared()
	os.Exit(code)
}

// newDatabase creates a utf8mb4 database, as production schemas holding names and emails are.
func newDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := teststore.SharedMariaDB(t).CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, dsn, "ALTER DATABASE "+Dialect{}.QuoteIdent(cfg.DBName)+" CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
	return dsn
}

func exec(t *testing.T, dsn, stmt string) {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

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
	server := teststore.SharedMariaDB(t)
	return sqltest.Harness{
		Dialect:     Dialect{},
		NewDatabase: newDatabase,
		Server:      server,
		WrongPassword: func(dsn string) string {
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Passwd = "wrong-password"
			return cfg.FormatDSN()
		},
		Unreachable: func(t *testing.T) string {
			return fmt.Sprintf("dsr:pw@tcp(127.0.0.1:%d)/db?timeout=5s", freePort(t))
		},
		Malformed: "dsr:secret@tcp(127.0.0.1:3306/db",
		NewSchema: func(t *testing.T, raw *sql.DB) string {
			name := fmt.Sprintf("app_%d", time.Now().UnixNano()%1e9)
			if _, err := raw.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = raw.Exec("DROP DATABASE " + name) })
			return name
		},
		CaseSensitiveText: "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		// A case-insensitive collation lets a plain index serve normalised email searches.
		EmailIndexDDL: "CREATE INDEX `people_email_norm` ON `people` (`email`)",
	}
}

func TestConformance(t *testing.T) {
	sqltest.RunConformance(t, harness(t))
}

func FuzzQueries(f *testing.F) {
	sqltest.FuzzQueries(f, Dialect{},
		sqlstore.Column{Type: "text", Text: true, Searchable: true, Charset: "utf8mb4", Collation: "utf8mb4_general_ci"},
		sqlstore.Column{Type: "bigint"})
}

func TestLinked(t *testing.T) {
	sqltest.RunLinked(t, harness(t), nil)
}
