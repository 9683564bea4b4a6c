package e2e

import (
	"context"
	"database/sql"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// holdOrders makes every erasure in the shop stop halfway: a transaction of the test's locks the
// orders table against writes (reads go on), so the operator's erase transaction has counted and
// deleted customers and then waits, inside the database, to mask the orders. That is where the
// faults are injected. release ends the hold (a no-op once the database dropped the session).
func holdOrders(t *testing.T, s *shop) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch s.storeType {
	case privacyv1alpha1.StoreTypePostgres:
		// EXCLUSIVE conflicts with the ROW EXCLUSIVE of UPDATE, not with the ACCESS SHARE of SELECT.
		if _, err := tx.Exec(`LOCK TABLE orders IN EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
	case privacyv1alpha1.StoreTypeMySQL:
		// Locking every row: plain (consistent) reads go on, UPDATEs wait.
		lockRows(t, tx)
	default:
		t.Fatalf("holdOrders: %s is not supported", s.storeType)
	}
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		_ = tx.Rollback()
		_ = conn.Close()
	}
	t.Cleanup(release)
	return release
}

// waitingOnLocks counts the sessions of other clients that wait on a lock in the shop's database.
func waitingOnLocks(t *testing.T, s *shop) int {
	t.Helper()
	var q string
	switch s.storeType {
	case privacyv1alpha1.StoreTypePostgres:
		q = `SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`
	case privacyv1alpha1.StoreTypeMySQL:
		q = `SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'`
	default:
		t.Fatalf("waitingOnLocks: %s is not supported", s.storeType)
	}
	var n int
	if err := s.db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", s.storeType, err)
	}
	return n
}

func lockRows(t *testing.T, tx *sql.Tx) {
	t.Helper()
	rows, err := tx.Query(`SELECT id FROM orders FOR UPDATE`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
