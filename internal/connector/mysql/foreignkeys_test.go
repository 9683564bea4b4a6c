package mysql

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// ForeignKeys lists single-column keys with their delete rule and leaves out keys over several
// columns, which linked data cannot follow.
func TestForeignKeysSingleColumnOnly(t *testing.T) {
	dsn := newDatabase(t)
	for _, stmt := range []string{
		"CREATE TABLE parent (id INT PRIMARY KEY, a INT NOT NULL, b INT NOT NULL, UNIQUE KEY parent_ab (a, b))",
		"CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent (id))",
		"CREATE TABLE cascade_child (id INT PRIMARY KEY, parent_id INT, CONSTRAINT cascade_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE)",
		"CREATE TABLE pair_child (id INT PRIMARY KEY, a INT, b INT, CONSTRAINT pair_parent FOREIGN KEY (a, b) REFERENCES parent (a, b))",
	} {
		exec(t, dsn, stmt)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fks, err := Dialect{}.ForeignKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, fk := range fks {
		if fk.From.Schema != "" {
			continue // another test's database on the shared server
		}
		got[fk.Name] = fk.From.String() + "." + fk.FromColumn + " -> " + fk.To.String() + "." + fk.ToColumn
		if fk.Name == "child_parent" && !fk.Blocks || fk.Name == "cascade_parent" && fk.Blocks {
			t.Errorf("%s: Blocks = %v", fk.Name, fk.Blocks)
		}
	}
	want := map[string]string{
		"child_parent":   "child.parent_id -> parent.id",
		"cascade_parent": "cascade_child.parent_id -> parent.id",
	}
	if len(got) != len(want) {
		t.Fatalf("foreign keys %v, want %v", got, want)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %q, want %q", name, got[name], w)
		}
	}
}
