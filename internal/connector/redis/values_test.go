package redis

import (
	"sort"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

func TestExpansionsTakeEveryValue(t *testing.T) {
	p, err := parsePattern("order:{email}:{orderId}")
	if err != nil {
		t.Fatal(err)
	}
	all := connector.Request{
		Identifiers: connector.Identifiers{"email": "a@x"},
		Values:      connector.Values{"email": {"b@x"}, "orderId": {"1", "2", "3"}},
	}.AllValues()
	var keys []string
	for _, ids := range expansions(p, all) {
		key, ok, err := p.expand(ids)
		if err != nil || !ok {
			t.Fatalf("expand: %v %v", ok, err)
		}
		keys = append(keys, key)
	}
	sort.Strings(keys)
	want := []string{"order:a@x:1", "order:a@x:2", "order:a@x:3", "order:b@x:1", "order:b@x:2", "order:b@x:3"}
	if len(keys) != len(want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("keys %q, want %q", keys, want)
		}
	}
	if got := expansions(p, connector.Values{"email": {"a@x"}}); len(got) != 0 {
		t.Fatalf("a pattern naming an identifier without values expanded to %d keys", len(got))
	}
}
