package sqltest

import (
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// testErasureFromPlannedSpellings: an erasure that follows its plan (a dry run with the same
// request ID) starts from the spellings the plan found and searches for none of them again. A
// spelling written in between is therefore not erased by it, and the verification, which always
// searches, reports it; the next erasure searches anew and erases it.
func (h Harness) testErasureFromPlannedSpellings(t *testing.T) {
	d := h.newDB(t)
	h.createPeople(t, d)
	var searches spellingSearches
	c := h.client(t, d.secret, peopleSpec(h.Dialect.Type()), sqlstore.Options{OnSpellingSearch: searches.add})
	ctx := ctxFor(t)
	subject, _ := peopleRows()
	subjectIDs := make([]int64, len(subject))
	for i, r := range subject {
		subjectIDs[i] = r.id
	}
	before := d.rows(t, "people")

	plan := peopleRequest(false)
	plan.DryRun = true
	if res, err := c.Erase(ctx, plan); err != nil || res.Erased != int64(len(subject)) {
		t.Fatalf("plan: %+v, %v; want %d", res, err, len(subject))
	}
	if searches.count() == 0 {
		t.Fatal("the plan searched no normalised column")
	}
	// A spelling of the subject's address that no row held when the plan searched.
	const late = int64(400)
	d.insert(t, "people", []string{"id", "email"}, []any{late, "cUsToMeR-1@eXaMpLe.CoM"})

	searches.reset()
	res, err := c.Erase(ctx, peopleRequest(false))
	if err != nil || res.Erased != int64(len(subject)) {
		t.Fatalf("Erase after the plan: %+v, %v; want %d erased", res, err, len(subject))
	}
	if n := searches.count(); n != 0 {
		t.Errorf("Erase after its plan searched %d times for spellings the plan had found", n)
	}
	after := d.rows(t, "people")
	if _, kept := after[late]; !kept {
		t.Fatal("the row written after the plan was erased without being searched for")
	}
	sameRows(t, "people", without(before, subjectIDs...), without(after, late))

	v, err := c.Verify(ctx, peopleRequest(false))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	sameCounts(t, "remaining after the erasure from the plan", map[string]int64{"people": 1}, v.RemainingLocations)

	// The memo was taken: this erasure searches, and finds the late spelling.
	searches.reset()
	if res, err := c.Erase(ctx, peopleRequest(false)); err != nil || res.Erased != 1 {
		t.Fatalf("second Erase: %+v, %v; want 1 erased", res, err)
	}
	if searches.count() == 0 {
		t.Error("the second erasure reused spellings instead of searching")
	}
	if v, err := c.Verify(ctx, peopleRequest(false)); err != nil || v.Remaining != 0 {
		t.Fatalf("Verify after the second erasure: %+v, %v", v, err)
	}
	sameRows(t, "people", without(before, subjectIDs...), d.rows(t, "people"))

	// Another request's plan is not this one's.
	other := peopleRequest(false)
	other.ID = "someone else"
	plan.ID = "planned"
	d.insert(t, "people", []string{"id", "email"}, []any{late + 1, "CUSTOMER-1@example.com"})
	if _, err := c.Erase(ctx, plan); err != nil {
		t.Fatal(err)
	}
	searches.reset()
	if res, err := c.Erase(ctx, other); err != nil || res.Erased != 1 {
		t.Fatalf("Erase of another request: %+v, %v; want 1", res, err)
	}
	if searches.count() == 0 {
		t.Error("an erasure used the spellings of another request's plan")
	}
}
