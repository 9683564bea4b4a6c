package controllers

import (
	"fmt"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// Across the stores of a sweep and across sweeps, an item's DROP status takes the strongest
// outcome: deleted (3) over opted out (4) over exempted (2). An item kept under a legal hold in
// one store and kept on purpose in another is opted out, not exempted, in either order.
func TestSuppressionOptedOutStatusPrecedence(t *testing.T) {
	var entries []suppression.Entry
	for i := range 4 {
		h, _ := suppression.DropHash(suppression.KindEmail, fmt.Sprintf("p%d@example.com", i))
		entries = append(entries, suppression.Entry{Hash: h, Kind: suppression.KindEmail, ID: fmt.Sprintf("I-%d", i)})
	}
	set := suppression.NewSet(entries)
	key := func(id string) suppression.Key {
		for i, e := range set.Entries() {
			if e.ID == id {
				return set.KeyOf(i)
			}
		}
		t.Fatalf("no entry %s", id)
		return suppression.Key{}
	}
	keys := func(ids ...string) []suppression.Key {
		var out []suppression.Key
		for _, id := range ids {
			out = append(out, key(id))
		}
		return out
	}
	// I-0: retained in the first store, kept on purpose in the second. I-1: the other way round.
	// I-2: deleted earlier, found again in an opt-out store. I-3: retained only.
	i, _ := set.Find(key("I-2"))
	set.SetStatus(i, suppression.StatusDeleted)
	applyStoreStatuses(set, storeSweep{scanned: true, exemptEntries: keys("I-0", "I-3"), optedOutEntries: keys("I-1")})
	applyStoreStatuses(set, storeSweep{scanned: true, optedOutEntries: keys("I-0", "I-2"), exemptEntries: keys("I-1")})
	want := map[string]suppression.Status{"I-0": suppression.StatusOptedOut, "I-1": suppression.StatusOptedOut,
		"I-2": suppression.StatusDeleted, "I-3": suppression.StatusExempted}
	for id, st := range want {
		i, _ := set.Find(key(id))
		if got := set.Entries()[i].Status; got != st {
			t.Errorf("%s: status %d, want %d", id, got, st)
		}
	}
	// A later sweep that erases an opted-out item (the list's action changed to erase): deleted.
	applyStoreStatuses(set, storeSweep{scanned: true, erasedEntries: keys("I-0")})
	if i, _ := set.Find(key("I-0")); set.Entries()[i].Status != suppression.StatusDeleted {
		t.Errorf("I-0 erased later: status %d, want 3", set.Entries()[i].Status)
	}
}
