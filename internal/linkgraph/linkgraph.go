// Package linkgraph resolves linked data before anything is erased: which identifiers the stores'
// mappings derive (a table's provides), from which identifiers, and in which order the stores must
// be asked to derive them. It does no I/O and never sees an identifier value, only names.
//
// A mapping (a table listing, a key pattern) needs the identifiers it matches and, when it has
// provides, derives further identifiers from the rows it matches. Resolve refuses a graph in
// which some matched identifier is neither known (a key of the identifiers Secret) nor provided by
// any mapping, and a graph in which an identifier is derived, directly or through others, from
// itself. Otherwise it returns the derivation steps: the stores to call Derive on, in order, each
// step's identifiers available once the steps before it have run.
package linkgraph

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Node is one mapping of one store.
type Node struct {
	// Store names the store, e.g. "DataStore shop/crm".
	Store string
	// Mapping says which mapping, e.g. "table customer" or "key cart:{customerId}"; for messages.
	Mapping string
	// Index of the mapping in the store's spec.
	Index int
	// Match are the identifier names the mapping matches.
	Match []string
	// Provides are the identifier names the mapping derives from the rows it matches.
	Provides []string
}

func (n Node) String() string { return n.Mapping + " of " + n.Store }

// Step is one call of Derive: Store derives Provides through the mappings Nodes.
type Step struct {
	Store    string
	Nodes    []Node
	Provides []string
}

// Plan is a resolved graph.
type Plan struct {
	// Steps to run in order, each after the ones before it.
	Steps []Step
	// Waves group the stores to call Derive on so that every store of a wave can be asked at
	// the same time: a mapping with provides is in the wave after the last wave of the mappings
	// that provide what it matches, and a store is in the waves of its mappings. A store asked in
	// an earlier wave is asked again in a later one, to follow the values that arrived in between.
	Waves [][]string
	// Derived are the identifier names some mapping provides, sorted.
	Derived []string
}

// Linked reports whether the nodes use linked data at all. Without provides there is nothing to
// derive, and an identifier the Secret lacks only means that its mappings find nothing (the
// behaviour before linked data), so callers need not resolve.
func Linked(nodes []Node) bool {
	for _, n := range nodes {
		if len(n.Provides) > 0 {
			return true
		}
	}
	return false
}

// UnprovidedError: mappings match identifiers that neither the Secret holds nor any mapping
// provides.
type UnprovidedError struct {
	// Identifiers by name, with the mappings that need them.
	Identifiers map[string][]string
}

func (e *UnprovidedError) Error() string {
	names := make([]string, 0, len(e.Identifiers))
	for name := range e.Identifiers {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("identifier %q (matched by %s)", name, strings.Join(e.Identifiers[name], ", ")))
	}
	return fmt.Sprintf("nothing provides %s: it is neither in the identifiers Secret nor in the provides of any mapping",
		strings.Join(parts, "; "))
}

// CycleError: an identifier is derived from itself.
type CycleError struct {
	// Cycle is the chain of identifier names, first and last the same.
	Cycle []string
	// Mappings that close the chain, for the message.
	Mappings []string
}

func (e *CycleError) Error() string {
	return fmt.Sprintf("identifier %q is derived from itself: %s (through %s)",
		e.Cycle[0], strings.Join(e.Cycle, " -> "), strings.Join(e.Mappings, ", "))
}

// Resolve checks the graph the nodes form, given the names of the identifiers known from the
// Secret, and orders the derivation.
func Resolve(nodes []Node, known []string) (*Plan, error) {
	isKnown := map[string]bool{}
	for _, k := range known {
		isKnown[k] = true
	}
	providers := map[string][]int{}
	for i, n := range nodes {
		for _, p := range n.Provides {
			if !slices.Contains(providers[p], i) {
				providers[p] = append(providers[p], i)
			}
		}
	}
	unprovided := map[string][]string{}
	for _, n := range nodes {
		for _, m := range n.Match {
			if !isKnown[m] && len(providers[m]) == 0 && !slices.Contains(unprovided[m], n.String()) {
				unprovided[m] = append(unprovided[m], n.String())
			}
		}
	}
	if len(unprovided) > 0 {
		return nil, &UnprovidedError{Identifiers: unprovided}
	}
	if err := findCycle(nodes); err != nil {
		return nil, err
	}
	order := order(nodes, providers)
	plan := &Plan{Waves: waves(nodes, providers)}
	for name := range providers {
		plan.Derived = append(plan.Derived, name)
	}
	sort.Strings(plan.Derived)
	for _, i := range order {
		n := nodes[i]
		if last := len(plan.Steps) - 1; last >= 0 && plan.Steps[last].Store == n.Store {
			plan.Steps[last].Nodes = append(plan.Steps[last].Nodes, n)
			plan.Steps[last].Provides = union(plan.Steps[last].Provides, n.Provides)
			continue
		}
		plan.Steps = append(plan.Steps, Step{Store: n.Store, Nodes: []Node{n}, Provides: union(nil, n.Provides)})
	}
	return plan, nil
}

func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	sort.Strings(a)
	return a
}

// findCycle looks for an identifier derived from itself, over the edges "matched -> provided" of
// every mapping with provides.
func findCycle(nodes []Node) error {
	type edge struct {
		to      string
		mapping string
	}
	edges := map[string][]edge{}
	var names []string
	for _, n := range nodes {
		for _, m := range n.Match {
			for _, p := range n.Provides {
				if len(edges[m]) == 0 {
					names = append(names, m)
				}
				edges[m] = append(edges[m], edge{to: p, mapping: n.String()})
			}
		}
	}
	sort.Strings(names)
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var via []string
	var visit func(name string) error
	visit = func(name string) error {
		state[name] = onPath
		path = append(path, name)
		for _, e := range edges[name] {
			switch state[e.to] {
			case onPath:
				start := slices.Index(path, e.to)
				cycle := append(slices.Clone(path[start:]), e.to)
				mappings := append(slices.Clone(via[start:]), e.mapping)
				return &CycleError{Cycle: cycle, Mappings: mappings}
			case unseen:
				via = append(via, e.mapping)
				if err := visit(e.to); err != nil {
					return err
				}
				via = via[:len(via)-1]
			}
		}
		path = path[:len(path)-1]
		state[name] = done
		return nil
	}
	for _, name := range names {
		if state[name] == unseen {
			if err := visit(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// waves places every node with provides after the providers of what it matches, at the lowest
// such depth, and lists per depth the stores of its nodes in input order. The graph is acyclic
// (findCycle), so the depths are finite.
func waves(nodes []Node, providers map[string][]int) [][]string {
	depth := make([]int, len(nodes))
	for i := range depth {
		depth[i] = -1
	}
	var depthOf func(i int, seen int) int
	depthOf = func(i int, seen int) int {
		if depth[i] >= 0 {
			return depth[i]
		}
		d := 0
		if seen <= len(nodes) { // a guard only: findCycle has ruled cycles out
			for _, m := range nodes[i].Match {
				for _, p := range providers[m] {
					if p != i {
						d = max(d, depthOf(p, seen+1)+1)
					}
				}
			}
		}
		depth[i] = d
		return d
	}
	var out [][]string
	for i, n := range nodes {
		if len(n.Provides) == 0 {
			continue
		}
		d := depthOf(i, 0)
		for len(out) <= d {
			out = append(out, nil)
		}
		if !slices.Contains(out[d], n.Store) {
			out[d] = append(out[d], n.Store)
		}
	}
	return out
}

// order sorts the nodes with provides so that every node comes after the providers of the
// identifiers it matches (all of them: a known identifier may gain derived values too). Among the
// nodes ready at a time it keeps to the store of the last one, so that one store's mappings form
// one step, and otherwise to the input order. The graph is acyclic (findCycle).
func order(nodes []Node, providers map[string][]int) []int {
	var pending []int
	for i, n := range nodes {
		if len(n.Provides) > 0 {
			pending = append(pending, i)
		}
	}
	placed := map[int]bool{}
	ready := func(i int) bool {
		for _, m := range nodes[i].Match {
			for _, p := range providers[m] {
				if p != i && !placed[p] {
					return false
				}
			}
		}
		return true
	}
	var out []int
	for len(pending) > 0 {
		pick := -1
		for k, i := range pending {
			if !ready(i) {
				continue
			}
			if pick < 0 {
				pick = k
			}
			if len(out) > 0 && nodes[i].Store == nodes[out[len(out)-1]].Store {
				pick = k
				break
			}
		}
		if pick < 0 {
			// Unreachable after findCycle; keep the input order rather than loop.
			pick = 0
		}
		placed[pending[pick]] = true
		out = append(out, pending[pick])
		pending = slices.Delete(pending, pick, pick+1)
	}
	return out
}

// FromSpec lists the mappings of one store. An http store has none: it receives every value and
// decides itself.
func FromSpec(store string, spec *privacyv1alpha1.DataStoreSpec) []Node {
	var nodes []Node
	for i, t := range spec.Tables {
		n := Node{Store: store, Mapping: fmt.Sprintf("table %s (tables[%d])", t.Name, i), Index: i}
		for _, m := range t.Match {
			n.Match = union(n.Match, []string{m.Identifier})
		}
		for _, p := range t.Provides {
			n.Provides = union(n.Provides, []string{p.Identifier})
		}
		nodes = append(nodes, n)
	}
	for i, c := range spec.Collections {
		n := Node{Store: store, Mapping: fmt.Sprintf("collection %s (collections[%d])", c.Name, i), Index: i}
		for _, m := range c.Match {
			n.Match = union(n.Match, []string{m.Identifier})
		}
		for _, p := range c.Provides {
			n.Provides = union(n.Provides, []string{p.Identifier})
		}
		nodes = append(nodes, n)
	}
	for i, k := range spec.Keys {
		n := Node{Store: store, Mapping: fmt.Sprintf("key pattern %s (keys[%d])", k.Pattern, i), Index: i}
		n.Match = union(n.Match, connector.TemplateNames(k.Pattern))
		nodes = append(nodes, n)
	}
	for i, o := range spec.Objects {
		n := Node{Store: store, Mapping: fmt.Sprintf("object key %s/%s (objects[%d])", o.Bucket, o.Key, i), Index: i}
		n.Match = union(n.Match, connector.TemplateNames(o.Key))
		nodes = append(nodes, n)
	}
	return nodes
}
