package sqltest

import (
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// FuzzQueries fuzzes the query builders of d with hostile table names, column names and
// identifier values. textCol and intCol describe a text and an integer column as d's catalog
// would. It checks that
//   - a name outside the spec pattern is refused, and an accepted one appears only quoted;
//   - the SQL text does not depend on the values: it is the same as for benign values that the
//     dialect accepts alike, so no value can reach the SQL;
//   - every bound argument has exactly one placeholder.
func FuzzQueries(f *testing.F, d sqlstore.Dialect, textCol, intCol sqlstore.Column) {
	for _, table := range []string{"users", "app.users", "Users", "_t1.x_2", "users; DROP TABLE x", `a"b`, "a`b", "a.b.c", "", "1abc", "a-b", "é"} {
		f.Add(table, "email", "alice@example.com", "42")
	}
	for _, col := range []string{"email", "E_mail2", `e"mail`, "e`mail", "e mail", "e.mail", strings.Repeat("c", 64)} {
		f.Add("users", col, "a@b.c", "7")
	}
	for _, v := range HostileValues {
		f.Add("users", "email", v, v)
	}
	f.Add("users", "email", "\xff\xfe", "\x00")
	f.Add("users", "email", "SELECT", "WHERE")
	f.Add("users", "email", `"email"`, "`email`")

	f.Fuzz(func(t *testing.T, table, column, email, userID string) {
		mapping := privacyv1alpha1.TableMapping{
			Name:   table,
			Action: privacyv1alpha1.ActionMask,
			Match: []privacyv1alpha1.ColumnMatch{
				{Column: column, Identifier: "email"}, {Column: "user_id", Identifier: "userId"}},
			Mask: []privacyv1alpha1.ColumnMask{
				{Column: "secret", Strategy: privacyv1alpha1.MaskHash},
				{Column: "note", Strategy: privacyv1alpha1.MaskRedact},
				{Column: "bio", Strategy: privacyv1alpha1.MaskNullify},
			},
		}
		col := func(proto sqlstore.Column, name string) sqlstore.Column {
			proto.Name = name
			proto.Nullable = true
			return proto
		}
		columns := []sqlstore.Column{
			col(textCol, column), col(intCol, "user_id"), col(textCol, "secret"), col(textCol, "note"), col(textCol, "bio"),
		}
		name, nameErr := sqlstore.ParseTableName(table)
		colErr := sqlstore.ValidateColumnName(column)
		tbl, err := sqlstore.NewTable(d, mapping, columns)
		if nameErr != nil || colErr != nil {
			if err == nil {
				t.Fatalf("NewTable accepted table %q column %q", table, column)
			}
			return
		}
		if err != nil {
			t.Fatalf("NewTable refused valid table %q column %q: %v", table, column, err)
		}
		quotedTable := d.QuoteIdent(name.Table)
		if name.Schema != "" {
			quotedTable = d.QuoteIdent(name.Schema) + "." + d.QuoteIdent(name.Table)
		}
		if tbl.Quoted() != quotedTable {
			t.Fatalf("quoted table %q, want %q", tbl.Quoted(), quotedTable)
		}

		ids := connector.Identifiers{"email": email, "userId": userID}
		benign := connector.Identifiers{}
		if accepts(d, textCol, email) {
			benign["email"] = "benign@example.com"
		}
		if accepts(d, intCol, userID) {
			benign["userId"] = "7"
		}
		salt := []byte("salt")
		type built struct {
			what string
			q    sqlstore.Query
			ok   bool
		}
		build := func(single connector.Identifiers) []built {
			ids := connector.Request{Identifiers: single}.AllValues()
			var out []built
			q, ok := tbl.CountQuery(ids)
			out = append(out, built{"count", q, ok})
			q, ok = tbl.SelectQuery(ids)
			out = append(out, built{"select", q, ok})
			q, ok = tbl.DeleteQuery(ids, 0)
			out = append(out, built{"delete", q, ok})
			q, ok = tbl.DeleteQuery(ids, 1000)
			out = append(out, built{"delete batch", q, ok})
			q, ok = tbl.MaskQuery(ids, salt, 1000)
			out = append(out, built{"mask", q, ok})
			return out
		}
		got, want := build(ids), build(benign)
		for i := range got {
			g, w := got[i], want[i]
			if g.ok != w.ok || g.q.SQL != w.q.SQL {
				t.Fatalf("%s: SQL depends on the values:\n%s\nvs benign\n%s", g.what, g.q.SQL, w.q.SQL)
			}
			if !g.ok {
				continue
			}
			checkStatement(t, d, g.what, g.q, quotedTable)
			if _, matchesByColumn := benign["email"]; matchesByColumn && !strings.Contains(g.q.SQL, d.QuoteIdent(column)) {
				t.Fatalf("%s: column %q not quoted in %s", g.what, column, g.q.SQL)
			}
		}

		// Deep search of the one value, against a benign value of the same length class.
		deepBenign := "b"
		if len([]rune(email)) >= sqlstore.MinContainsRunes {
			deepBenign = "benign@example.com"
		}
		dq, _, dok := tbl.DeepQuery([]string{email}, nil)
		var bq sqlstore.Query
		var bok bool
		if accepts(d, textCol, email) {
			bq, _, bok = tbl.DeepQuery([]string{deepBenign}, nil)
		}
		if dok != bok || dq.SQL != bq.SQL {
			t.Fatalf("deep: SQL depends on the value:\n%s\nvs benign\n%s", dq.SQL, bq.SQL)
		}
		if dok {
			checkStatement(t, d, "deep", dq, quotedTable)
		}
	})
}

// accepts reports whether d can compare a column of col's type with v at all.
func accepts(d sqlstore.Dialect, col sqlstore.Column, v string) bool {
	if v == "" {
		return false
	}
	_, ok := d.Equal(sqlstore.NewBuilder(d), col, d.QuoteIdent("c"), v)
	return ok
}

func checkStatement(t *testing.T, d sqlstore.Dialect, what string, q sqlstore.Query, quotedTable string) {
	t.Helper()
	if !strings.Contains(q.SQL, quotedTable) {
		t.Fatalf("%s: table not quoted as %s in %s", what, quotedTable, q.SQL)
	}
	if d.Placeholder(1) == d.Placeholder(2) {
		if n := strings.Count(q.SQL, d.Placeholder(1)); n != len(q.Args) {
			t.Fatalf("%s: %d placeholders for %d arguments in %s", what, n, len(q.Args), q.SQL)
		}
	} else {
		for i := 1; i <= len(q.Args); i++ {
			if !strings.Contains(q.SQL, d.Placeholder(i)) {
				t.Fatalf("%s: argument %d has no placeholder in %s", what, i, q.SQL)
			}
		}
		if strings.Contains(q.SQL, d.Placeholder(len(q.Args)+1)) {
			t.Fatalf("%s: placeholder beyond the %d arguments in %s", what, len(q.Args), q.SQL)
		}
	}
}
