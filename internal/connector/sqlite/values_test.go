package sqlite

import (
	"context"
	"fmt"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Twenty thousand values of one identifier (a big customer's order ids) are compared in one
// statement: each is bound once, as a numbered parameter, and the statement stays under SQLite's
// 32,766 parameters. Bound twice (the column's comparison, then its bytes), a statement failed
// from about 16,400 values.
func TestTwentyThousandValuesOfOneIdentifier(t *testing.T) {
	if raceEnabled {
		t.Skip("make test runs this test without the race detector (see race_on_test.go)")
	}
	const subject, bystanders = 20000, 5000
	path, raw := setup(t, "CREATE TABLE item (id INTEGER PRIMARY KEY, order_id TEXT NOT NULL)",
		fmt.Sprintf(`INSERT INTO item (id, order_id)
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %d) SELECT i, 'o-' || i FROM k`, subject+bystanders))
	// The statement's size is under test, not its speed: a loaded machine gets a timeout that
	// cannot cut it short.
	c := newUnhurriedClient(t, path, privacyv1alpha1.TableMapping{Name: "item", Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "order_id", Identifier: "orderId"}}})
	values := make([]string, subject)
	for i := range values {
		values[i] = fmt.Sprintf("o-%d", i+1)
	}
	req := connector.Request{ID: "many", Identifiers: connector.Identifiers{"orderId": values[0]},
		Values: connector.Values{"orderId": values[1:]}}
	ctx := context.Background()
	if v, err := c.Verify(ctx, req); err != nil || v.Remaining != subject {
		t.Fatalf("Verify before: %+v, %v; want %d remaining", v, err, subject)
	}
	if res, err := c.Erase(ctx, req); err != nil || res.Erased != subject {
		t.Fatalf("Erase: %+v, %v; want %d erased", res, err, subject)
	}
	if v, err := c.Verify(ctx, req); err != nil || v.Remaining != 0 {
		t.Fatalf("Verify after: %+v, %v", v, err)
	}
	var left, lowest int
	if err := raw.QueryRow("SELECT COUNT(*), MIN(id) FROM item").Scan(&left, &lowest); err != nil {
		t.Fatal(err)
	}
	if left != bystanders || lowest != subject+1 {
		t.Errorf("%d rows left from id %d; want the %d bystanders from %d", left, lowest, bystanders, subject+1)
	}
}
