package requests

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/mysql"
	"github.com/dsr-operator/dsr-operator/internal/connector/postgres"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlite"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

const echoedEmail = "Zoe.O'Hara+dsr@example.test"

// echoedForms are the ways a driver may echo the identifier: as is, case-folded, quoted, with
// quotes doubled or backslash-escaped, and percent-encoded.
func echoedForms() []string {
	return []string{
		echoedEmail,
		strings.ToUpper(echoedEmail),
		strings.ToLower(echoedEmail),
		"'" + strings.ReplaceAll(echoedEmail, "'", "''") + "'",
		`"` + strings.ReplaceAll(echoedEmail, "'", `\'`) + `"`,
		url.QueryEscape(echoedEmail),
		url.PathEscape(strings.ToUpper(echoedEmail)),
	}
}

// assertNoForm fails when any echoed form, in any letter case, or the value's distinctive parts
// appear in what status, events or the debug log would get.
func assertNoForm(t *testing.T, f Failure) {
	t.Helper()
	for _, text := range []string{f.Message, f.Detail} {
		low := strings.ToLower(text)
		for _, form := range append(echoedForms(), "o'hara", "o''hara", `o\'hara`, "zoe.o", "%40example") {
			if strings.Contains(low, strings.ToLower(form)) {
				t.Fatalf("%q holds the identifier form %q", text, form)
			}
		}
	}
}

func TestClassifyNeverShowsDriverText(t *testing.T) {
	ids := connector.Identifiers{"email": echoedEmail}
	allForms := strings.Join(echoedForms(), " / ")

	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, sqliteErr := db.ExecContext(context.Background(), fmt.Sprintf(`SELECT * FROM "%s"`, strings.ToUpper(echoedEmail)))
	if sqliteErr == nil {
		t.Fatal("the SQLite query unexpectedly worked")
	}

	for _, tc := range []struct {
		name     string
		err      error
		wantCode string
	}{
		{"postgres", sqlstore.Classify(postgres.Dialect{}, "erase", "public.users",
			&pgconn.PgError{Code: "23503", Severity: "ERROR", Message: "update or delete violates foreign key",
				Detail: "Key (email)=(" + allForms + ") is still referenced"}, ids), "SQLSTATE 23503"},
		{"postgres connection", sqlstore.Classify(postgres.Dialect{}, "check", "",
			fmt.Errorf("failed to connect to `user=shop_admin database=shop`: db.internal:5432: %s", allForms), ids), ""},
		{"mysql", sqlstore.Classify(mysql.Dialect{}, "erase", "shop.orders",
			&gomysql.MySQLError{Number: 1451, Message: "Cannot delete a parent row: " + allForms}, ids), "MySQL 1451"},
		{"sqlite", sqlstore.Classify(sqlite.Dialect{}, "verify", "users", sqliteErr, ids), "SQLite 1"},
		{"unclassified", errors.New("driver said " + allForms), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Classify(tc.err, ids)
			assertNoForm(t, f)
			if tc.wantCode != "" && !strings.Contains(f.Message, tc.wantCode) {
				t.Errorf("message %q lacks the code %q", f.Message, tc.wantCode)
			}
			for _, leak := range []string{"shop_admin", "db.internal", "Cannot delete", "foreign key", "no such table"} {
				if strings.Contains(f.Message, leak) {
					t.Errorf("message %q holds driver text %q", f.Message, leak)
				}
			}
			if f.Detail == "" {
				t.Error("no detail for the debug log")
			}
		})
	}
}

func TestClassifyMessageShape(t *testing.T) {
	err := &connector.Error{Kind: connector.KindMapping, Op: "erase", Code: "SQLSTATE 42P01", Location: "public.users",
		Err: errors.New(`relation "public.users" does not exist`)}
	f := Classify(err, nil)
	if want := "erase: MappingInvalid (SQLSTATE 42P01) at public.users"; f.Message != want {
		t.Fatalf("message %q, want %q", f.Message, want)
	}
	if f.Transient || f.Reason != "StoreFailed" {
		t.Fatalf("a mapping error classified as %+v", f)
	}
	if !strings.Contains(f.Detail, "does not exist") {
		t.Fatalf("detail %q lost the driver's text", f.Detail)
	}
}
