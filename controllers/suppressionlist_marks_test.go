package controllers

import (
	"fmt"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// A pass over a store that was interrupted while erasing left its found entries marked erasing;
// the next pass over that store decides them: found again, they take its outcome; not found
// again, they were erased by the interrupted pass (deleted, not "not found"). A pass that could
// not read the store to the end decides nothing.
func TestSuppressionErasingMarksAreResolvedByTheStoresNextPass(t *testing.T) {
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
	status := func(id string) suppression.Status {
		i, _ := set.Find(key(id))
		return set.Entries()[i].Status
	}
	// I-0 was erased before the interruption, I-1 was not yet; I-2 is retained only (never
	// marked: nothing of it is erased); I-3 was never found.
	for _, id := range []string{"I-0", "I-1"} {
		i, _ := set.Find(key(id))
		set.SetStatus(i, suppression.StatusNone.WithErasing())
	}
	applyStoreStatuses(set, storeSweep{failed: true})
	if !status("I-0").Erasing() || !status("I-1").Erasing() {
		t.Fatalf("a pass that did not read the store decided: I-0 %d, I-1 %d", status("I-0"), status("I-1"))
	}
	applyStoreStatuses(set, storeSweep{scanned: true,
		liveEntries:   []suppression.Key{key("I-1")},
		erasedEntries: []suppression.Key{key("I-1")},
		exemptEntries: []suppression.Key{key("I-2")}})
	want := map[string]suppression.Status{"I-0": suppression.StatusDeleted, "I-1": suppression.StatusDeleted,
		"I-2": suppression.StatusExempted, "I-3": suppression.StatusNone}
	for id, st := range want {
		if got := status(id); got != st {
			t.Errorf("%s: status %d, want %d", id, got, st)
		}
	}
	// Found again and its erasure failed: undecided, not deleted.
	i, _ := set.Find(key("I-3"))
	set.SetStatus(i, suppression.StatusNone.WithErasing())
	applyStoreStatuses(set, storeSweep{scanned: true, failed: true, liveEntries: []suppression.Key{key("I-3")}})
	if got := status("I-3"); got != suppression.StatusNone {
		t.Errorf("I-3: status %d, want none", got)
	}
}
