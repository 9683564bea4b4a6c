package controllers

import (
	"context"
	"fmt"
	"slices"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/linkgraph"
	"github.com/dsr-operator/dsr-operator/internal/stores"
)

// Cross-store links in sweeps. A person found in one store may have data in others that know
// them only by an identifier the first one provides (a CRM id driving a Redis key pattern). The
// sweep of the other store cannot find that data: the list holds hashes of the person's emails
// and phones, not of ids minted later. So a person found in a store is followed through the
// linked-data graph: their values are derived in the store they were found in, then in each
// store that matches an identifier provided so far (in the order they are reached), and erased
// in the reverse order, the store they were found in last: a pass interrupted half-way finds them
// again where they were found and derives the same values again.

// linkedStores returns the stores, other than all[from], that match an identifier all[from] or a
// store reached before provides, in the order they are reached. http stores have no mappings to
// follow and are not reached.
func linkedStores(all []stores.Store, from int) []*stores.Store {
	nodes := make([][]linkgraph.Node, len(all))
	for i := range all {
		nodes[i] = linkgraph.FromSpec(fmt.Sprintf("%s %s", all[i].Ref.Kind, all[i].Ref.Name), all[i].Spec)
	}
	provided := map[string]bool{}
	provide := func(i int) {
		for _, n := range nodes[i] {
			for _, p := range n.Provides {
				provided[p] = true
			}
		}
	}
	provide(from)
	reached := map[int]bool{from: true}
	var out []*stores.Store
	for grew := true; grew; {
		grew = false
		for i := range all {
			if reached[i] || !slices.ContainsFunc(nodes[i], func(n linkgraph.Node) bool {
				return slices.ContainsFunc(n.Match, func(id string) bool { return provided[id] })
			}) {
				continue
			}
			reached[i], grew = true, true
			out = append(out, &all[i])
			provide(i)
		}
	}
	return out
}

// linkedClients holds leases on the linked stores for one store's sweep.
type linkedClients struct {
	stores  []*stores.Store
	clients []connector.Client
	release []func()
}

func (r *SuppressionListReconciler) acquireLinked(ctx context.Context, linked []*stores.Store) (*linkedClients, error) {
	lc := &linkedClients{stores: linked}
	for _, st := range linked {
		lease, err := r.Pool.Acquire(ctx, st, false)
		if err != nil {
			lc.close()
			return nil, fmt.Errorf("%s %s: %w", st.Ref.Kind, st.Ref.Name, err)
		}
		lc.clients = append(lc.clients, lease.Client())
		lc.release = append(lc.release, lease.Release)
	}
	return lc, nil
}

func (lc *linkedClients) close() {
	if lc == nil {
		return
	}
	for _, release := range lc.release {
		release()
	}
}

// derive adds to req what the store the person was found in (cl) and every linked store derive
// from it.
func (lc *linkedClients) derive(ctx context.Context, cl connector.Client, req *connector.Request) error {
	if err := deriveFound(ctx, cl, req); err != nil {
		return err
	}
	for _, c := range lc.clients {
		if err := deriveFound(ctx, c, req); err != nil {
			return err
		}
	}
	return nil
}

// erase erases the person in the linked stores, the last reached first, verifies, and returns
// what was deleted or masked.
func (lc *linkedClients) erase(ctx context.Context, req connector.Request) (int64, error) {
	var total int64
	for i := len(lc.clients) - 1; i >= 0; i-- {
		res, err := lc.clients[i].Erase(ctx, req)
		if err != nil {
			return total, lc.wrap(i, err)
		}
		ver, err := lc.clients[i].Verify(ctx, req)
		if err != nil {
			return total, lc.wrap(i, err)
		}
		if ver.Remaining > 0 {
			return total, lc.wrap(i, connector.Errorf(connector.KindRejected, "verify", "%d records remain after the erasure", ver.Remaining))
		}
		total += res.Erased + res.Masked
	}
	return total, nil
}

// remaining counts the person's records still to erase in the linked stores.
func (lc *linkedClients) remaining(ctx context.Context, req connector.Request) (int64, error) {
	var total int64
	for i, c := range lc.clients {
		ver, err := c.Verify(ctx, req)
		if err != nil {
			return total, lc.wrap(i, err)
		}
		total += ver.Remaining
	}
	return total, nil
}

func (lc *linkedClients) wrap(i int, err error) error {
	return fmt.Errorf("in linked %s %s: %w", lc.stores[i].Ref.Kind, lc.stores[i].Ref.Name, err)
}
