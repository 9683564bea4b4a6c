package connector

import (
	"slices"
	"strconv"
	"testing"
)

func TestValueSetKeepsOrderAndSkipsRepeats(t *testing.T) {
	s := NewValueSet(Values{"orderId": {"3", "1", "3", ""}})
	if s.Add("orderId", "1") || s.Add("orderId", "") {
		t.Fatal("a repeated or empty value was added")
	}
	if !s.Add("orderId", "2") || !s.Add("cardId", "1") {
		t.Fatal("a new value was not added")
	}
	if !s.Has("cardId", "1") || s.Has("cardId", "2") || s.Has("email", "1") {
		t.Fatal("Has does not answer from the set")
	}
	want := Values{"orderId": {"3", "1", "2"}, "cardId": {"1"}}
	got := s.Values()
	for name, vals := range want {
		if !slices.Equal(got[name], vals) {
			t.Fatalf("%s: got %d values in another order than added", name, len(got[name]))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d names, want %d", len(got), len(want))
	}
}

func TestMergeDisjointAppends(t *testing.T) {
	v := Values{"email": {"a@example.com"}}
	v.MergeDisjoint(Values{"customerId": {"7", "9"}, "email": {"b@example.com"}, "orderId": nil})
	if !slices.Equal(v["email"], []string{"a@example.com", "b@example.com"}) || !slices.Equal(v["customerId"], []string{"7", "9"}) {
		t.Fatalf("merged into %d names, %d emails", len(v), len(v["email"]))
	}
	if _, ok := v["orderId"]; ok {
		t.Fatal("a name without values was added")
	}
}

func TestValueSetMergeAndMissing(t *testing.T) {
	s := NewValueSet(Values{"orderId": {"1", "2"}})
	if n := s.Missing("orderId", []string{"2", "3", "3", "", "4"}); n != 2 {
		t.Fatalf("Missing counted %d values the set does not hold, want 2", n)
	}
	s.Merge(Values{"orderId": {"3", "2", "4"}, "cardId": {"9"}})
	if got := s.Values(); !slices.Equal(got["orderId"], []string{"1", "2", "3", "4"}) || !slices.Equal(got["cardId"], []string{"9"}) {
		t.Fatalf("merged into %d order ids and %d card ids", len(got["orderId"]), len(got["cardId"]))
	}
	if s.Missing("orderId", []string{"4", "1"}) != 0 {
		t.Fatal("values the set holds were counted as missing")
	}
}

// Values.Add finds repeats in the list for a single value; a derivation adds thousands of values
// one at a time, which only the set does without comparing each against all the others.
func BenchmarkValueSetAddOneAtATime(b *testing.B) {
	values := make([]string, 10000)
	for i := range values {
		values[i] = strconv.Itoa(i)
	}
	for b.Loop() {
		s := NewValueSet(nil)
		for _, v := range values {
			s.Add("orderId", v)
		}
	}
}
