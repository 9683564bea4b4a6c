package controllers

import (
	"context"
	"fmt"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/stores"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// listMatcher normalises and hashes a stored value the way the list's entries were made.
type listMatcher struct {
	set   *suppression.Set
	drop  bool
	keyed suppression.KeyedHasher
}

// hash is value's hash, as identifier compared as kind, as the list holds it; ok is false when
// the list cannot hold it.
func (m *listMatcher) hash(identifier string, kind normalize.Kind, value string) (suppression.Hash, suppression.Kind, bool) {
	k := suppression.KindOf(kind)
	if m.drop {
		h, ok := suppression.DropHash(k, value)
		return h, k, ok
	}
	h, ok := m.keyed.HashOf(identifier, kind, value)
	return h, k, ok
}

// digests is the list's DROP entries as salted digests under a fresh salt, for a store that
// sends digests instead of values (connector.DigestMatch).
func (m *listMatcher) digests() (*connector.DigestMatch, error) {
	salt, err := connector.NewSweepSalt()
	if err != nil {
		return nil, err
	}
	idx := connector.NewDigestIndex(salt, m.set.Len())
	for _, e := range m.set.Entries() {
		switch e.Kind {
		case suppression.KindEmail:
			idx.Add(normalize.Email, e.Hash)
		case suppression.KindPhone:
			idx.Add(normalize.Phone, e.Hash)
		}
	}
	return idx.Match(), nil
}

func (m *listMatcher) match(identifier string, kind normalize.Kind, value string) bool {
	h, k, ok := m.hash(identifier, kind, value)
	return ok && m.set.Contains(h, k)
}

// sweptSubject is one person found in a store: the values found of them, and where.
type sweptSubject struct {
	values   connector.Values
	entries  []suppression.Key
	retained int64
	live     int64
}

// storeSweep is what one store's sweep found and did.
type storeSweep struct {
	status privacyv1alpha1.SuppressionStoreStatus
	// erasedEntries and exemptEntries are the list entries found erased, or held only under a
	// legal hold, in this store.
	erasedEntries, exemptEntries []suppression.Key
	// foundEntries were found and left in place (action report): no status is decided for them.
	foundEntries []suppression.Key
	// optedOutEntries were found outside legal holds and left in place on purpose (action
	// optOut): the broker records only an opt-out of them.
	optedOutEntries []suppression.Key
	// reappeared counts the records a sweep found outside their erased state: erased now
	// (action erase) or still to erase (action report). Rows a request masked keep the identifier
	// the sweep reads, and retained rows keep everything: neither is data that came back.
	reappeared int64
	failed     bool
	// scanned: the store was read to the end. liveEntries are the entries found there outside
	// legal holds (marked erasing before the erasure, for a DROP list with action erase).
	scanned     bool
	liveEntries []suppression.Key
}

// sweep reads every selected store for the list's entries, erases what it finds when the list
// asks for it, and records the outcome. After each store it saves a checkpoint (the store's
// counts, and its DROP items' statuses) in the list's index, so that a manager stopped mid-sweep
// resumes with the next store: a store swept twice would no longer find what the first pass
// erased, and its counts and items' statuses would be lost, or counted twice.
func (r *SuppressionListReconciler) sweep(ctx context.Context, s *suppressionScope) error {
	list := s.list
	found, err := stores.Resolve(ctx, r.Client, list.Namespace, list.Spec.StoreSelector)
	if err != nil {
		return err
	}
	number := list.Status.Sweeps + 1
	checkpoint := s.loaded.Index.Sweep
	if checkpoint != nil && checkpoint.Number != number {
		checkpoint = nil
	}
	var results []suppression.StoreResult
	for i := range found {
		st := &found[i]
		if done, ok := checkpoint.Done(string(st.Ref.Kind), st.Ref.Name); ok {
			results = append(results, done)
			continue
		}
		m := &listMatcher{set: s.loaded.Set, drop: list.Spec.Source.DropSecretRef != nil,
			keyed: suppression.KeyedHasher{Key: r.Key, Norm: normalize.Normalizer{Region: r.phoneRegion()}}}
		res := r.sweepStore(ctx, s, st, m, linkedStores(found, i))
		if err := r.saveCheckpoint(ctx, s, number, res); err != nil {
			return err
		}
		results = append(results, res.result())
	}
	return r.recordSweep(ctx, s, results)
}

// result is what the checkpoint and the status keep of a store's sweep.
func (o storeSweep) result() suppression.StoreResult {
	return suppression.StoreResult{SuppressionStoreStatus: o.status, Reappeared: o.reappeared, Failed: o.failed}
}

// saveCheckpoint records one store's part of sweep number: its result, and for a DROP list the
// statuses it decided (deleted, exempted, or found and left in place), in one write of the index.
func (r *SuppressionListReconciler) saveCheckpoint(ctx context.Context, s *suppressionScope, number int64, res storeSweep) error {
	drop := s.list.Spec.Source.DropSecretRef != nil
	loaded, err := s.storage.UpdateFrom(ctx, s.list, s.loaded, func(l *suppression.Loaded) (string, bool, error) {
		if drop {
			applyStoreStatuses(l.Set, res)
		}
		cp := &suppression.SweepCheckpoint{Number: number}
		if old := l.Index.Sweep; old != nil && old.Number == number {
			for _, done := range old.Stores {
				if done.Kind != res.status.Kind || done.Name != res.status.Name {
					cp.Stores = append(cp.Stores, done)
				}
			}
		}
		cp.Stores = append(cp.Stores, res.result())
		l.Index.Sweep = cp
		return l.Index.SourceDigest, true, nil
	})
	if err != nil {
		return fmt.Errorf("saving the sweep's checkpoint: %w", err)
	}
	s.loaded = loaded
	return nil
}

// markErasing saves the erasing mark of the entries about to be erased, before the erasure.
func (r *SuppressionListReconciler) markErasing(ctx context.Context, s *suppressionScope, keys []suppression.Key) error {
	loaded, err := s.storage.UpdateFrom(ctx, s.list, s.loaded, func(l *suppression.Loaded) (string, bool, error) {
		changed := false
		for _, k := range keys {
			if i, ok := l.Set.Find(k); ok && !l.Set.Entries()[i].Status.Erasing() {
				l.Set.SetStatus(i, l.Set.Entries()[i].Status.WithErasing())
				changed = true
			}
		}
		return l.Index.SourceDigest, changed, nil
	})
	if err != nil {
		return err
	}
	s.loaded = loaded
	return nil
}

// applyStoreStatuses moves the DROP items one store's sweep found on: deleted (3) once any store
// erased their data, opted out (4) when found outside a legal hold by a list with action optOut
// and not deleted, exempted (2) when found only under a legal hold and neither deleted nor opted
// out elsewhere, and marked found (not reported) when left in place, so that the sweep does not
// call them not found.
func applyStoreStatuses(set *suppression.Set, res storeSweep) {
	if res.scanned {
		// Entries marked erasing by an earlier pass over this store that was interrupted: found
		// again, they take this pass's outcome; not found again, they were erased by it.
		live := map[suppression.Key]bool{}
		for _, k := range res.liveEntries {
			live[k] = true
		}
		for i, e := range set.Entries() {
			switch {
			case !e.Status.Erasing():
			case live[set.KeyOf(i)]:
				set.SetStatus(i, e.Status.Base())
			default:
				set.SetStatus(i, suppression.StatusDeleted)
			}
		}
	}
	for _, k := range res.exemptEntries {
		if i, ok := set.Find(k); ok && set.Entries()[i].Status != suppression.StatusDeleted && set.Entries()[i].Status != suppression.StatusOptedOut {
			set.SetStatus(i, suppression.StatusExempted)
		}
	}
	for _, k := range res.optedOutEntries {
		if i, ok := set.Find(k); ok && set.Entries()[i].Status != suppression.StatusDeleted {
			set.SetStatus(i, suppression.StatusOptedOut)
		}
	}
	for _, k := range res.erasedEntries {
		if i, ok := set.Find(k); ok {
			set.SetStatus(i, suppression.StatusDeleted)
		}
	}
	for _, k := range res.foundEntries {
		if i, ok := set.Find(k); ok && set.Entries()[i].Status == suppression.StatusNone {
			set.SetStatus(i, suppression.StatusFound)
		}
	}
}

// sweepStore sweeps one store. Its failure is recorded in its status, never hidden: the sweep
// of the other stores goes on and Ready says which store failed.
func (r *SuppressionListReconciler) sweepStore(ctx context.Context, s *suppressionScope, st *stores.Store, m *listMatcher, linked []*stores.Store) storeSweep {
	out := storeSweep{status: privacyv1alpha1.SuppressionStoreStatus{Name: st.Ref.Name, Kind: st.Ref.Kind, Type: st.Spec.Type}}
	fail := func(what string, err error) storeSweep {
		f := requests.Classify(err, nil)
		out.failed = true
		out.status.Message = fmt.Sprintf("%s: %s", what, f.Message)
		return out
	}
	lease, err := r.Pool.Acquire(ctx, st, false)
	if err != nil {
		return fail("connecting", err)
	}
	defer lease.Release()
	cl := lease.Client()
	sweeper, ok := cl.(connector.Sweeper)
	if !ok {
		out.status.Message = fmt.Sprintf("a %s store cannot be swept", st.Spec.Type)
		return out
	}
	out.status.Supported = true
	subjects := map[string]*sweptSubject{}
	var order []string
	rate := r.RowsPerSecond
	if rate == 0 {
		rate = DefaultSweepRowsPerSecond
	}
	opts := connector.SweepOptions{Match: m.match, PageSize: r.PageSize, RowsPerSecond: max(rate, 0)}
	if m.drop && st.Spec.Type == privacyv1alpha1.StoreTypeHTTP {
		digests, err := m.digests()
		if err != nil {
			return fail("preparing the sweep", err)
		}
		opts.Digests = digests
	}
	stats, err := sweeper.Sweep(ctx, opts,
		func(hit connector.SweepHit) error {
			h, k, ok := m.hash(hit.Identifier, hit.Kind, hit.Value)
			if !ok {
				return nil
			}
			key := fmt.Sprintf("%x/%d", h, k)
			sub := subjects[key]
			if sub == nil {
				sub = &sweptSubject{values: connector.Values{}}
				for _, i := range m.set.Lookup(h, k) {
					sub.entries = append(sub.entries, m.set.KeyOf(i))
				}
				subjects[key] = sub
				order = append(order, key)
			}
			sub.values.Add(hit.Identifier, hit.Value)
			if hit.Retained {
				sub.retained++
			} else {
				sub.live++
			}
			return nil
		})
	if stats != nil {
		out.status.Scanned = stats.Scanned
	}
	if connector.IsSweepUnsupported(err) {
		// The store cannot be swept for this list (its service does not offer sweeps, or it
		// sends digests and the list is keyed): shown as unsupported, not as a failing store.
		out.status.Supported = false
		out.status.Message = requests.Classify(err, nil).Message
		return out
	}
	if err != nil {
		return fail("sweeping", err)
	}
	out.scanned = true
	for _, key := range order {
		if sub := subjects[key]; sub.live > 0 {
			out.liveEntries = append(out.liveEntries, sub.entries...)
		}
	}
	if s.list.Spec.Source.DropSecretRef != nil && s.list.Spec.Action == privacyv1alpha1.SuppressionErase && len(out.liveEntries) > 0 {
		if err := r.markErasing(ctx, s, out.liveEntries); err != nil {
			return fail("saving the sweep's progress", err)
		}
	}
	optOut := s.list.Spec.Action == privacyv1alpha1.SuppressionOptOut
	var lc *linkedClients
	if len(linked) > 0 && len(out.liveEntries) > 0 && !optOut {
		if lc, err = r.acquireLinked(ctx, linked); err != nil {
			return fail("connecting to the stores linked to it", err)
		}
		defer lc.close()
	}
	for n, key := range order {
		sub := subjects[key]
		out.status.Matched += sub.live + sub.retained
		out.status.Retained += sub.retained
		if sub.live == 0 {
			out.exemptEntries = append(out.exemptEntries, sub.entries...)
			continue
		}
		if optOut {
			// Kept on purpose where the broker records only an opt-out: counted as matched,
			// neither erased nor reappeared, and its linked stores are not followed.
			out.optedOutEntries = append(out.optedOutEntries, sub.entries...)
			continue
		}
		req := connector.Request{ID: fmt.Sprintf("%s/sweep/%d/%d", s.list.UID, s.list.Status.Sweeps+1, n), Values: sub.values}
		var linkedErased int64
		if lc != nil {
			if err := lc.derive(ctx, cl, &req); err != nil {
				return fail("deriving the linked values of what the sweep found", err)
			}
			if s.list.Spec.Action == privacyv1alpha1.SuppressionErase {
				if linkedErased, err = lc.erase(ctx, req); err != nil {
					out.status.Erased += linkedErased
					return fail("erasing what the sweep found in the stores linked to it", err)
				}
			} else {
				remaining, err := lc.remaining(ctx, req)
				if err != nil {
					return fail("counting what the sweep found in the stores linked to it", err)
				}
				out.reappeared += remaining
			}
		}
		if s.list.Spec.Action != privacyv1alpha1.SuppressionErase {
			remaining, err := remainingOf(ctx, cl, req)
			if err != nil {
				return fail("counting what the sweep found", err)
			}
			out.reappeared += remaining
			out.foundEntries = append(out.foundEntries, sub.entries...)
			continue
		}
		erased, err := eraseFound(ctx, cl, req)
		// A store's erased count includes what its finds erased in the stores linked to it.
		erased += linkedErased
		if err != nil {
			out.status.Erased += linkedErased
			return fail("erasing what the sweep found", err)
		}
		out.status.Erased += erased
		out.reappeared += erased
		switch {
		case erased > 0:
			out.erasedEntries = append(out.erasedEntries, sub.entries...)
		case sub.retained > 0:
			out.exemptEntries = append(out.exemptEntries, sub.entries...)
		default:
			// Found only in rows already in their erased state (masked, verified just now).
			out.erasedEntries = append(out.erasedEntries, sub.entries...)
		}
	}
	return out
}

// remainingOf counts a found person's records still to erase, linked ones included, without
// changing anything: what action erase would act on.
func remainingOf(ctx context.Context, cl connector.Client, req connector.Request) (int64, error) {
	if err := deriveFound(ctx, cl, &req); err != nil {
		return 0, err
	}
	ver, err := cl.Verify(ctx, req)
	if err != nil {
		return 0, err
	}
	return ver.Remaining, nil
}

// deriveFound adds a found person's linked values to req, so that linked rows are reached too.
func deriveFound(ctx context.Context, cl connector.Client, req *connector.Request) error {
	d, ok := cl.(connector.Deriver)
	if !ok {
		return nil
	}
	der, err := d.Derive(ctx, *req)
	if err != nil {
		return err
	}
	if der != nil {
		req.Values.Merge(der.Values)
		// Several stores may derive for one person (cross-store links): what any of them
		// found shared stays protected.
		if len(der.Shared) > 0 {
			if req.Shared == nil {
				req.Shared = connector.Values{}
			}
			req.Shared.Merge(der.Shared)
		}
	}
	return nil
}

// eraseFound erases a person the sweep found through the store's own mapping: their linked
// values derived first (so that linked rows go too), then Erase, which applies retain rules and
// the shared-value rule, then Verify. It returns what was deleted or masked.
func eraseFound(ctx context.Context, cl connector.Client, req connector.Request) (int64, error) {
	if err := deriveFound(ctx, cl, &req); err != nil {
		return 0, err
	}
	res, err := cl.Erase(ctx, req)
	if err != nil {
		return 0, err
	}
	ver, err := cl.Verify(ctx, req)
	if err != nil {
		return 0, err
	}
	if ver.Remaining > 0 {
		return 0, connector.Errorf(connector.KindRejected, "verify", "%d records remain after the erasure", ver.Remaining)
	}
	return res.Erased + res.Masked, nil
}
