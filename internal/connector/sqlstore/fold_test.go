package sqlstore

import (
	"reflect"
	"testing"
)

func TestFoldEqualities(t *testing.T) {
	cases := []struct {
		name  string
		preds []string
		want  []string
	}{
		{"none", nil, []string{}},
		{"one stays an equality", []string{`"id" = $1`}, []string{`("id" = $1)`}},
		{"several fold into IN", []string{`"id" = $1::int8`, `"id" = $2::int8`}, []string{`("id" IN ($1::int8, $2::int8))`}},
		{"compound predicates are kept", []string{"`e` = CONVERT(? USING utf8mb4) COLLATE x AND BINARY `e` = CAST(? AS BINARY)", "`e` = ?"},
			[]string{"(`e` = CONVERT(? USING utf8mb4) COLLATE x AND BINARY `e` = CAST(? AS BINARY))", "(`e` = ?)"}},
		{"another column's predicate is kept", []string{`"id" = $1`, `"id"::text = $2`}, []string{`("id" = $1)`, `("id"::text = $2)`}},
		{"or in an operand is kept", []string{`"id" = $1 OR true`, `"id" = $2`}, []string{`("id" = $1 OR true)`, `("id" = $2)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := foldEqualities(`"id"`, c.preds)
			if c.name != "compound predicates are kept" && !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			if c.name == "compound predicates are kept" {
				if got := foldEqualities("`e`", c.preds); !reflect.DeepEqual(got, c.want) {
					t.Fatalf("got %q, want %q", got, c.want)
				}
			}
		})
	}
}
