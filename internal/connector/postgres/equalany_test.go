package postgres

import (
	"context"
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// TestEqualAnyMatchesWhatEqualMatches: several values of one identifier are bound as one array
// parameter, and select exactly the rows that the values, one request each, select: values
// Equal refuses (a non-canonical integer or uuid, a NUL) match nothing, and a hostile value is
// only data.
func TestEqualAnyMatchesWhatEqualMatches(t *testing.T) {
	const u1, u2 = "3f2b8c4e-1d2a-4b6c-9e8f-0a1b2c3d4e5f", "0000000a-0000-4000-8000-00000000000b"
	dsn, _ := setup(t,
		`CREATE TABLE t (i4 int4, i8 int8, u uuid, tx text, vc varchar(40), nm numeric)`,
		`INSERT INTO t VALUES
			(1, 10, '`+u1+`', 'ann@example.com', 'ann', 1.5),
			(2, 20, '`+u2+`', 'bob@example.com', 'bob', 2),
			(3, 30, NULL, 'O''Brien', 'x%', 3),
			(4, 40, NULL, 'carl@example.com', 'carl', 4)`)
	values := map[string][]string{
		"i4": {"1", "3", "01", "+2", "4.0", "9999999999999"},
		"i8": {"10", "30", " 20", "1e1"},
		"u":  {u1, strings.ToUpper(u2), "{" + u2 + "}", "not-a-uuid"},
		"tx": {"ann@example.com", "O'Brien", "bob@example.com%", "carl@example.com\x00", "' OR 1=1 --"},
		"vc": {"ann", "x%", "Bob", "x_"},
		"nm": {"1.5", "3", "2.0"},
	}
	want := map[string]int{"i4": 2, "i8": 2, "u": 1, "tx": 2, "vc": 2, "nm": 2}
	for col, vals := range values {
		var log statementLog
		table := privacyv1alpha1.TableMapping{Name: "t", Action: privacyv1alpha1.ActionDelete,
			Match: []privacyv1alpha1.ColumnMatch{{Column: col, Identifier: "v"}}}
		c := newClient(t, dsn, sqlstore.Options{OnStatement: log.record}, table)
		ctx := context.Background()
		alone := 0
		for _, v := range vals {
			got, err := c.Verify(ctx, connector.Request{Identifiers: connector.Identifiers{"v": v}})
			if err != nil {
				t.Fatalf("%s: Verify one value: %v", col, err)
			}
			alone += int(got.Remaining)
		}
		log.take()
		got, err := c.Verify(ctx, connector.Request{Values: connector.Values{"v": vals}})
		if err != nil {
			t.Fatalf("%s: Verify %d values: %v", col, len(vals), err)
		}
		if int(got.Remaining) != want[col] || alone != want[col] {
			t.Errorf("%s: %d rows for the values together, %d one by one; want %d", col, got.Remaining, alone, want[col])
		}
		if statements := log.take(); !strings.Contains(strings.Join(statements, "\n"), "ANY(") {
			t.Errorf("%s: the values were not bound as one array: %q", col, statements)
		}
	}
}
