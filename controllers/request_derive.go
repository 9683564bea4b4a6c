package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/linkgraph"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

// derivation is one run of Derive over the request's stores, wave by wave of the link graph
// (linkgraph.Plan.Waves): the stores of a wave are asked at the same time, each with every value
// known when the wave starts, and a store asked before is asked again only when what it matches
// has gained values or shared values since, because a store's Derive already follows its own
// links to the end.
type derivation struct {
	s     *requestScope
	plan  *linkgraph.Plan
	index map[string]int
	// matches are, per store, the identifiers its mappings match; provides, those they provide.
	matches, provides map[int][]string

	// valueSet and sharedSet are the values and shared values known while the waves run: a
	// subject's thousands of derived values are merged store after store, each merge looking
	// them up, not building a new set.
	valueSet, sharedSet *connector.ValueSet
	// values and shared are what the run derived, the shared values set aside from values.
	values, shared connector.Values
	byStore        map[int]*storeDerivation
	// plans are, per store, the dry run its last Derive counted (deletions only).
	plans map[int]*connector.DerivedPlan
	// seen is, per store, how many values and shared values of what it matches it was last
	// asked with: values only ever grow, so an equal count is an equal set.
	seen map[int]int
}

func newDerivation(s *requestScope, plan *linkgraph.Plan, index map[string]int, nodes []linkgraph.Node) *derivation {
	d := &derivation{s: s, plan: plan, index: index, matches: map[int][]string{}, provides: map[int][]string{},
		byStore: map[int]*storeDerivation{}, seen: map[int]int{}, plans: map[int]*connector.DerivedPlan{}}
	for _, n := range nodes {
		i := index[n.Store]
		d.matches[i] = union(d.matches[i], n.Match)
		d.provides[i] = union(d.provides[i], n.Provides)
	}
	return d
}

// failedDerive is a store that could not be read.
type failedDerive struct {
	store string
	err   error
}

// run derives from the identifiers and the values an earlier acceptance of the request derived,
// and sets the shared values aside. It returns the first store (in the graph's order) that
// failed.
func (d *derivation) run(ctx context.Context, earlier derivedValues) *failedDerive {
	d.valueSet, d.sharedSet = connector.NewValueSet(earlier.values), connector.NewValueSet(earlier.shared)
	for _, wave := range d.plan.Waves {
		for _, label := range wave {
			i := d.index[label]
			if d.byStore[i] != nil {
				continue
			}
			mine := &storeDerivation{names: d.provides[i], values: connector.NewValueSet(nil), shared: connector.NewValueSet(nil)}
			for _, name := range mine.names {
				mine.values.Merge(connector.Values{name: earlier.values[name]})
				mine.shared.Merge(connector.Values{name: earlier.shared[name]})
			}
			d.byStore[i] = mine
		}
		if failed := d.wave(ctx, wave); failed != nil {
			return failed
		}
	}
	// A value that turned out shared in a later store never selects a row to change.
	known := d.valueSet.Values()
	kept := make(connector.Values, len(known))
	for name, vals := range known {
		mine := make([]string, 0, len(vals))
		for _, v := range vals {
			if !d.sharedSet.Has(name, v) {
				mine = append(mine, v)
			}
		}
		kept[name] = mine
	}
	d.values, d.shared = kept, d.sharedSet.Values()
	return nil
}

// wave asks the wave's stores that have something new to follow, at the same time, and merges
// what they derived in the wave's order.
func (d *derivation) wave(ctx context.Context, wave []string) *failedDerive {
	type outcome struct {
		asked   bool
		derived *connector.Derivation
		err     error
	}
	outcomes := make([]outcome, len(wave))
	req := connector.Request{ID: string(d.s.object.GetUID()), Identifiers: d.s.identifiers, Values: d.valueSet.Values(), Shared: d.sharedSet.Values(),
		Plan: d.s.planWhileDeriving}
	var wg sync.WaitGroup
	for k, label := range wave {
		i := d.index[label]
		if last, ok := d.seen[i]; ok && last == d.askedWith(i, nil) {
			continue
		}
		st := d.s.acceptedStores[i]
		wg.Go(func() {
			derived, err := d.s.deriveIn(ctx, i, st.Ref.Kind, st.Ref.Name, req)
			outcomes[k] = outcome{true, derived, err}
		})
	}
	wg.Wait()
	for k, label := range wave {
		if err := outcomes[k].err; err != nil {
			return &failedDerive{store: label, err: err}
		}
	}
	// What a store derived itself is no news to it in the next wave.
	for k, label := range wave {
		if outcomes[k].asked {
			i := d.index[label]
			d.seen[i] = d.askedWith(i, outcomes[k].derived)
			d.plans[i] = nil
			if r := outcomes[k].derived; r != nil {
				d.plans[i] = r.Plan
			}
		}
	}
	for k, label := range wave {
		if r := outcomes[k].derived; r != nil {
			mine := d.byStore[d.index[label]]
			d.valueSet.Merge(r.Values)
			d.sharedSet.Merge(r.Shared)
			mine.values.Merge(r.Values)
			mine.shared.Merge(r.Shared)
		}
	}
	return nil
}

// askedWith counts the values and shared values of what store i matches, together with those of
// its own derivation r when there is one.
func (d *derivation) askedWith(i int, r *connector.Derivation) int {
	n := 0
	for _, name := range d.matches[i] {
		n += len(d.valueSet.Values()[name]) + len(d.sharedSet.Values()[name])
		if r != nil {
			n += d.valueSet.Missing(name, r.Values[name]) + d.sharedSet.Missing(name, r.Shared[name])
		}
	}
	return n
}

// counts is each store's status entry.
func (d *derivation) counts(stores int) [][]privacyv1alpha1.DerivedIdentifier {
	out := make([][]privacyv1alpha1.DerivedIdentifier, stores)
	for i, mine := range d.byStore {
		out[i] = mine.counts(d.sharedSet)
	}
	return out
}

// refuse leaves the request pending after a store could not be read, to be accepted again.
func (s *requestScope) refuseDerive(f *failedDerive) {
	failure := requests.Classify(f.err, s.identifiers)
	s.log.V(1).Info("Deriving linked identifiers failed", "store", f.store, "detail", failure.Detail)
	s.status.Phase = privacyv1alpha1.PhasePending
	s.facts.refusal = &requests.Rejection{Reason: failure.Reason,
		Message: fmt.Sprintf("deriving linked identifiers from %s: %s", f.store, failure.Message)}
	s.effect.after(rejectedRetry)
}

// validPlans are the dry runs counted while deriving that still stand: those of stores whose
// matched identifiers have, in the end, exactly the values and shared values the store counted
// with (a later store may have found more, or found one shared).
func (d *derivation) validPlans() map[int]*connector.EraseResult {
	out := map[int]*connector.EraseResult{}
	for i, p := range d.plans {
		if p == nil || p.Result == nil {
			continue
		}
		valid := true
		for _, name := range d.matches[i] {
			if !sameSet(d.values[name], p.Values[name]) || !sameSet(d.shared[name], p.Shared[name]) {
				valid = false
				break
			}
		}
		if valid {
			out[i] = p.Result
		}
	}
	return out
}

// sameSet reports whether a and b hold the same values, ignoring order and repeats. Sorted
// copies compare thousands of values without a set for each side.
func sameSet(a, b []string) bool {
	sorted := func(v []string) []string {
		c := slices.Clone(v)
		slices.Sort(c)
		return slices.Compact(c)
	}
	return slices.Equal(sorted(a), sorted(b))
}
