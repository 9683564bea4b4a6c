package sqlstore

import (
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

func TestValueBatchesKeepEveryValueOnce(t *testing.T) {
	search := deepSearch{}
	for i := range 10 {
		search.values = append(search.values, string(rune('a'+i)))
	}
	search.foldedValues = []string{"x", "y", "z"}
	batches := valueBatches(search, 4)
	seen := map[string]int{}
	for _, b := range batches {
		if n := len(b.values) + len(b.foldedValues); n == 0 || n > 4 {
			t.Fatalf("batch of %d values", n)
		}
		for _, v := range b.values {
			seen["v"+v]++
		}
		for _, v := range b.foldedValues {
			seen["f"+v]++
		}
	}
	if len(seen) != 13 {
		t.Fatalf("values searched: %v", seen)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s searched %d times", v, n)
		}
	}
	if got := valueBatches(search, 13); len(got) != 1 {
		t.Errorf("a search that fits is split in %d", len(got))
	}
}

func TestValidateSpecRefusesAnUnknownDeepScope(t *testing.T) {
	p := NewProvider(stubDialect{}, Options{})
	spec := &privacyv1alpha1.DataStoreSpec{
		Type: stubDialect{}.Type(),
		Tables: []privacyv1alpha1.TableMapping{{Name: "t", Action: privacyv1alpha1.ActionDelete,
			Match: []privacyv1alpha1.ColumnMatch{{Column: "c", Identifier: "email"}}}},
		Verification: &privacyv1alpha1.DataStoreVerification{DeepScope: "everything"},
	}
	if err := p.ValidateSpec(spec); err == nil || !strings.Contains(err.Error(), "deepScope") {
		t.Fatalf("unknown deep scope: %v", err)
	}
	spec.Verification.DeepScope = privacyv1alpha1.DeepScopeMapped
	if err := p.ValidateSpec(spec); err != nil {
		t.Fatalf("deep scope mapped: %v", err)
	}
	// The test dialect cannot list relations: a database scope would search nothing.
	spec.Verification.DeepScope = privacyv1alpha1.DeepScopeDatabase
	if err := p.ValidateSpec(spec); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("deep scope database without a relation lister: %v", err)
	}
}
