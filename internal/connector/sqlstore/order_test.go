package sqlstore

import (
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

func TestEraseOrderPutsReferencingTablesFirst(t *testing.T) {
	table := func(name string) *Table {
		return &Table{Name: TableName{Table: name}, Mapping: privacyv1alpha1.TableMapping{Name: name}}
	}
	fk := func(from, to string) ForeignKey {
		return ForeignKey{From: TableName{Table: from}, To: TableName{Table: to}, Blocks: true}
	}
	cases := []struct {
		name   string
		tables []string
		fks    []ForeignKey
		want   string
	}{
		{"no keys keeps the mapping's order", []string{"customer", "orders", "address"}, nil, "customer orders address"},
		{"chain", []string{"customer", "orders", "order_item", "address"},
			[]ForeignKey{fk("orders", "customer"), fk("order_item", "orders"), fk("customer", "address"), fk("orders", "address")},
			"order_item orders customer address"},
		{"a cycle keeps the mapping's order", []string{"a", "b"}, []ForeignKey{fk("a", "b"), fk("b", "a")}, "a b"},
		{"self reference is no constraint on order", []string{"employee", "team"},
			[]ForeignKey{fk("employee", "employee"), fk("team", "employee")}, "team employee"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tables []*Table
			for _, n := range tc.tables {
				tables = append(tables, table(n))
			}
			var got []string
			for _, tb := range eraseOrder(stubDialect{}, tables, tc.fks) {
				got = append(got, tb.Name.Table)
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("order %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRulesOutrank(t *testing.T) {
	mk := func(action privacyv1alpha1.TableAction) *Table {
		return &Table{Name: TableName{Table: "tickets"}, Mapping: privacyv1alpha1.TableMapping{Name: "tickets", Action: action}}
	}
	retain, del, mask := mk(privacyv1alpha1.ActionRetain), mk(privacyv1alpha1.ActionDelete), mk(privacyv1alpha1.ActionMask)
	other := &Table{Name: TableName{Table: "other"}, Mapping: privacyv1alpha1.TableMapping{Name: "other", Action: privacyv1alpha1.ActionRetain}}
	linkTables([]*Table{mask, del, retain, other})
	if len(retain.links.outranked) != 0 {
		t.Errorf("retain is outranked by %d mappings", len(retain.links.outranked))
	}
	if len(del.links.outranked) != 1 || del.links.outranked[0] != retain {
		t.Errorf("delete must yield to retain only")
	}
	if len(mask.links.outranked) != 2 {
		t.Errorf("mask must yield to delete and retain, yields to %d", len(mask.links.outranked))
	}
}
