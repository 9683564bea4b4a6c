package sqltest

import (
	"fmt"
	"slices"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// testCountsInFewStatements maps forty tables: a plan and a verification count them all with one
// statement while the values are few, and split the statements, still counting right, when the
// tables are more than one statement takes or the values more than it binds.
func (h Harness) testCountsInFewStatements(t *testing.T) {
	const tables = 40
	d := h.newDB(t)
	spec := &privacyv1alpha1.DataStoreSpec{Type: h.Dialect.Type()}
	for i := range tables {
		name := fmt.Sprintf("c%02d", i)
		d.exec(t, "CREATE TABLE "+name+" (id INTEGER PRIMARY KEY, ref INTEGER NOT NULL)")
		d.insert(t, name, []string{"id", "ref"}, []any{1, 1}, []any{2, 2}, []any{3, 3}, []any{4, 999999})
		spec.Tables = append(spec.Tables, privacyv1alpha1.TableMapping{Name: name, Action: privacyv1alpha1.ActionDelete,
			Match: []privacyv1alpha1.ColumnMatch{{Column: "ref", Identifier: "ref"}}})
	}
	log := &statementLog{verbs: map[string]int{}}
	c := h.client(t, d.secret, spec, sqlstore.Options{OnStatement: log.record})
	// Warm the catalog: the statements counted below are the work's alone.
	if _, err := c.Check(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	few := connector.Request{ID: "few", Identifiers: connector.Identifiers{"ref": "1"}, Values: connector.Values{"ref": {"2", "3"}}}
	many := few
	many.Values = connector.Values{"ref": {"2", "3"}}
	for i := range 9000 {
		many.Values.Add("ref", fmt.Sprint(100000+i))
	}
	// Many values over three of the tables: each binds more than one statement takes.
	threeSpec := *spec
	threeSpec.Tables = spec.Tables[:3]
	three := h.client(t, d.secret, &threeSpec, sqlstore.Options{OnStatement: log.record})
	if _, err := three.Check(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		c             connector.Client
		tables        int
		req           connector.Request
		maxStatements int
	}{{"few values", c, tables, few, 2}, {"many values", three, 3, many, 3}} {
		log.take()
		v, err := tc.c.Verify(ctxFor(t), tc.req)
		if err != nil {
			t.Fatalf("%s: Verify: %v", tc.name, err)
		}
		verbs, _ := log.take()
		if v.Remaining != int64(3*tc.tables) || len(v.RemainingLocations) != tc.tables {
			t.Errorf("%s: verify found %d rows in %d tables, want %d in %d", tc.name, v.Remaining, len(v.RemainingLocations), 3*tc.tables, tc.tables)
		}
		if verbs["SELECT"] > tc.maxStatements {
			t.Errorf("%s: verify sent %d SELECT statements, want at most %d", tc.name, verbs["SELECT"], tc.maxStatements)
		}
		dry := tc.req
		dry.DryRun = true
		plan, err := tc.c.Erase(ctxFor(t), dry)
		if err != nil || plan.Erased != int64(3*tc.tables) {
			t.Errorf("%s: dry run %+v, %v: want %d rows", tc.name, plan, err, 3*tc.tables)
		}
	}
	res, err := c.Erase(ctxFor(t), few)
	if err != nil || res.Erased != 3*tables {
		t.Fatalf("erase %+v, %v: want %d rows", res, err, 3*tables)
	}
	for i := range tables {
		var n int
		if err := d.raw.QueryRowContext(ctxFor(t), fmt.Sprintf("SELECT COUNT(*) FROM c%02d WHERE ref = 999999", i)).Scan(&n); err != nil || n != 1 {
			t.Fatalf("table c%02d: bystander rows %d, %v", i, n, err)
		}
	}
}

// testUniqueColumns: the primary key and a one-column unique constraint are unique by
// themselves; a column of a composite unique key or of a plain index is not.
func (h Harness) testUniqueColumns(t *testing.T) {
	uc, ok := h.Dialect.(sqlstore.UniqueColumner)
	if !ok {
		t.Skip("the dialect cannot tell unique columns")
	}
	d := h.newDB(t)
	d.exec(t, "CREATE TABLE u (id INTEGER PRIMARY KEY, code VARCHAR(32) NOT NULL, a INTEGER, b INTEGER, c INTEGER,"+
		" CONSTRAINT u_code UNIQUE (code), CONSTRAINT u_ab UNIQUE (a, b))")
	d.exec(t, "CREATE INDEX u_c ON u (c)")
	cols, err := uc.UniqueColumns(ctxFor(t), d.raw, sqlstore.TableName{Table: "u"})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(cols)
	if !slices.Equal(cols, []string{"code", "id"}) {
		t.Fatalf("unique columns %q, want code and id", cols)
	}
}
