package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// TestPlannedErasureIsOneTransaction: an erasure its plan sized goes to PostgreSQL as one
// pipelined batch. It changes exactly what the statements one by one change, reports the rows
// per table, and when a statement fails (here a trigger refuses the second table's delete) the
// tables before it are left as they were, and the failure names the table.
func TestPlannedErasureIsOneTransaction(t *testing.T) {
	dsn, raw := setup(t,
		`CREATE TABLE account (id int PRIMARY KEY, email text NOT NULL)`,
		`CREATE TABLE note (id int PRIMARY KEY, email text NOT NULL, body text)`,
		`CREATE TABLE audit (id int PRIMARY KEY, email text)`,
		`INSERT INTO account VALUES (1, 'ann@example.com'), (2, 'bob@example.com'), (3, 'ann@example.com')`,
		`INSERT INTO note VALUES (10, 'ann@example.com', 'x'), (11, 'bob@example.com', 'y')`,
		`INSERT INTO audit VALUES (20, 'ann@example.com'), (21, 'bob@example.com')`,
		`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$`,
		`CREATE TRIGGER refuse_note BEFORE DELETE ON note FOR EACH ROW EXECUTE FUNCTION refuse()`)
	byEmail := []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}
	var log statementLog
	c := newClient(t, dsn, sqlstore.Options{OnStatement: log.record},
		privacyv1alpha1.TableMapping{Name: "account", Action: privacyv1alpha1.ActionDelete, Match: byEmail},
		privacyv1alpha1.TableMapping{Name: "note", Action: privacyv1alpha1.ActionDelete, Match: byEmail},
		privacyv1alpha1.TableMapping{Name: "audit", Action: privacyv1alpha1.ActionMask, Match: byEmail,
			Mask: []privacyv1alpha1.ColumnMask{{Column: "email", Strategy: privacyv1alpha1.MaskNullify}}})
	ctx := context.Background()
	planned := int64(4)
	req := connector.Request{ID: "p", Identifiers: connector.Identifiers{"email": "ann@example.com"}, Planned: &planned}

	_, err := c.Erase(ctx, req)
	var cerr *connector.Error
	if !errors.As(err, &cerr) || cerr.Location != "note" {
		t.Fatalf("Erase with a refusing trigger on note: %v; want a failure located at note", err)
	}
	for table, want := range map[string]int{"account": 3, "note": 2, "audit": 2} {
		if got := count(t, raw, "SELECT COUNT(*) FROM "+table); got != want {
			t.Errorf("%s: %d rows after the failed erasure, want %d: the statements before the failure must roll back", table, got, want)
		}
	}
	if got := count(t, raw, "SELECT COUNT(*) FROM audit WHERE email = 'ann@example.com'"); got != 1 {
		t.Errorf("audit was masked although the erasure failed")
	}

	if _, err := raw.Exec(`DROP TRIGGER refuse_note ON note`); err != nil {
		t.Fatal(err)
	}
	log.take()
	res, err := c.Erase(ctx, req)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if res.Erased != 3 || res.Masked != 1 {
		t.Errorf("Erase = %+v, want 3 erased (2 accounts, 1 note) and 1 masked", res)
	}
	statements := log.take()
	changes := 0
	for _, q := range statements {
		if strings.HasPrefix(q, "DELETE") || strings.HasPrefix(q, "UPDATE") {
			changes++
		}
	}
	if changes != 3 {
		t.Errorf("the erasure sent %d changes, want one per table: %q", changes, statements)
	}
	for table, want := range map[string]int{"account": 1, "note": 1, "audit": 2} {
		if got := count(t, raw, "SELECT COUNT(*) FROM "+table); got != want {
			t.Errorf("%s: %d rows after the erasure, want %d", table, got, want)
		}
	}
	if got := count(t, raw, "SELECT COUNT(*) FROM audit WHERE email = 'bob@example.com'"); got != 1 {
		t.Errorf("the bystander's audit row was changed")
	}
	if got := count(t, raw, "SELECT COUNT(*) FROM audit WHERE email = 'ann@example.com'"); got != 0 {
		t.Errorf("the subject's audit row was not masked")
	}
	v, err := c.Verify(ctx, req)
	if err != nil || v.Remaining != 0 {
		t.Errorf("Verify = %+v, %v; want nothing remaining", v, err)
	}
}
