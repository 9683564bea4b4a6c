package mysql

import (
	"context"
	"database/sql"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// globalStatus reads one of the server's global status counters.
func globalStatus(t *testing.T, raw *sql.DB, name string) int64 {
	t.Helper()
	var n int64
	var ignored string
	if err := raw.QueryRow("SHOW GLOBAL STATUS LIKE '"+name+"'").Scan(&ignored, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A connection prepares each statement once and executes it again with new values: twenty
// verifications of different subjects prepare no more statements than the first needed on
// each of the pool's connections, and every answer is still that subject's.
func TestStatementsArePreparedOncePerConnection(t *testing.T) {
	dsn, raw := setup(t,
		"CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(255), KEY (email))",
		"INSERT INTO people VALUES (1, 'a0@example.com'), (2, 'a1@example.com'), (3, 'a1@example.com'), (4, 'b@example.com')")
	c := newClient(t, dsn, deleteByEmailMapping())
	ctx := context.Background()
	verify := func(email string) int64 {
		t.Helper()
		v, err := c.Verify(ctx, connector.Request{ID: email, Identifiers: connector.Identifiers{"email": email}})
		if err != nil {
			t.Fatal(err)
		}
		return v.Remaining
	}
	verify("warm@example.com")
	before := globalStatus(t, raw, "Com_stmt_prepare")
	executed := globalStatus(t, raw, "Com_stmt_execute")
	const rounds = 20
	for i := range rounds {
		want := int64(0)
		email := "nobody@example.com"
		switch i % 3 {
		case 0:
			email, want = "a0@example.com", 1
		case 1:
			email, want = "a1@example.com", 2
		}
		if got := verify(email); got != want {
			t.Fatalf("round %d: %d rows remaining for %s, want %d", i, got, email, want)
		}
	}
	prepared := globalStatus(t, raw, "Com_stmt_prepare") - before
	ran := globalStatus(t, raw, "Com_stmt_execute") - executed
	if ran < rounds {
		t.Fatalf("%d statements executed in %d verifications: the test measures nothing", ran, rounds)
	}
	// Every statement shape may still be new on some of the pool's 4 connections, never more.
	if prepared > 4*ran/rounds {
		t.Errorf("%d statements prepared for %d executed in %d verifications: statements are not reused", prepared, ran, rounds)
	}
}

func deleteByEmailMapping() privacyv1alpha1.TableMapping {
	return privacyv1alpha1.TableMapping{Name: "people", Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}}
}
