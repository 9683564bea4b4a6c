package sqlstore

import (
	"context"
	"strconv"
	"strings"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

var _ connector.Deriver = (*Store)(nil)

// maxDeriveRounds bounds the rounds of "derive, then set shared values aside": each round sets at
// least one more value aside, and a mapping that keeps finding new ones is a data problem better
// stopped than followed.
const maxDeriveRounds = 16

// Derive reads the provides columns of the subject's rows (rows matched by delete and retain
// mappings: a mask mapping matches someone else's row the subject only appears in), following
// this store's provides/match links until nothing new is found. Values also held by a row that is
// not the subject's are shared: they are set aside and the derivation runs again without them, so
// nothing is derived through someone else's row either. It changes nothing (see reader).
func (s *Store) Derive(ctx context.Context, req connector.Request) (*connector.Derivation, error) {
	const op = "derive"
	tables, fks, err := s.resolveLinked(ctx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	tx, done, err := s.reader(ctx, tables)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	defer done()
	given := req.AllValues()
	shared := req.Shared.Clone()
	if shared == nil {
		shared = connector.Values{}
	}
	for round := 0; ; round++ {
		derived, bound, err := s.deriveOnce(ctx, tx, tables, given, shared)
		if err != nil {
			return nil, s.fail(op, err, req)
		}
		owned := given.Clone()
		owned.MergeDisjoint(derived) // deriveOnce derives nothing given
		// Spellings bound before are kept (see bind): the next round reads no column twice.
		if bound, err = s.bindAll(ctx, tx, bound, owned); err != nil {
			return nil, s.fail(op, err, req)
		}
		tables = bound
		found, err := s.sharedValues(ctx, tx, bound, fks, derived, owned)
		if err != nil {
			return nil, s.fail(op, err, req)
		}
		if found.Count() == 0 || round == maxDeriveRounds {
			d := &connector.Derivation{Values: derived, Shared: shared}
			if req.Plan {
				// The tables keep the spellings they were bound with: the plan reads them again
				// only for values it adds (the shared ones).
				if d.Plan, err = s.planDerived(ctx, tx, bound, fks, req, derived, shared); err != nil {
					return nil, err
				}
			}
			return d, nil
		}
		shared.Merge(found)
	}
}

// planDerived counts, right after the derivation, what an Erase dry run would report with the
// values the request came with and those derived, the shared ones set aside: the controllers
// then need no dry run of their own when no other store changes these values.
func (s *Store) planDerived(ctx context.Context, tx Querier, tables []*Table, fks []ForeignKey, req connector.Request, derived, shared connector.Values) (*connector.DerivedPlan, error) {
	values := req.Values.Clone()
	if values == nil {
		values = connector.Values{}
	}
	values.MergeDisjoint(derived) // derived holds nothing the request came with
	for name, vals := range values {
		set := make(map[string]bool, len(shared[name]))
		for _, v := range shared[name] {
			set[v] = true
		}
		kept := vals[:0]
		for _, v := range vals {
			if !set[v] {
				kept = append(kept, v)
			}
		}
		values[name] = kept
	}
	plan := connector.Request{ID: req.ID, Identifiers: req.Identifiers, Values: values, Shared: shared.Clone(), DryRun: true}
	ids := plan.AllValues()
	tables, err := s.bindAll(ctx, tx, linkedErase(s.d, tables, fks), withShared(ids, plan.Shared))
	if err != nil {
		return nil, s.fail("derive", err, req)
	}
	res, _, _, err := s.countWork(ctx, "derive", tx, tables, fks, plan, ids, false)
	if err != nil {
		return nil, err
	}
	s.memo.put(req.ID, spellingsOf(tables))
	return &connector.DerivedPlan{Result: res, Values: values, Shared: plan.Shared}, nil
}

// deriveOnce follows the provides of the subject's rows to a fixed point, never through a value
// in shared. Each step reads only the rows that the values found by the step before match, so a
// table is read once per hop with every new value in one statement, never again for values it
// was already read with.
func (s *Store) deriveOnce(ctx context.Context, q Querier, tables []*Table, given, shared connector.Values) (connector.Values, []*Table, error) {
	derived := connector.Values{}
	known := connector.NewValueSet(given)
	aside := connector.NewValueSet(shared)
	fresh := given
	for fresh.Count() > 0 {
		// Derived values can be of a normalised kind too (an order's contact email).
		bound, err := s.bindAll(ctx, q, tables, known.Values())
		if err != nil {
			return nil, nil, err
		}
		tables = bound
		next := connector.Values{}
		for _, t := range tables {
			if len(t.links.provides) == 0 || t.Mapping.Action == privacyv1alpha1.ActionMask {
				continue
			}
			found, err := s.readProvides(ctx, q, t, fresh)
			if err != nil {
				return nil, nil, err
			}
			for _, name := range found.Names() {
				var added []string
				for _, v := range found[name] {
					if !aside.Has(name, v) && known.Add(name, v) {
						added = append(added, v)
					}
				}
				if len(added) > 0 {
					next[name] = append(next[name], added...) // new to known, so to next too
				}
			}
		}
		derived.MergeDisjoint(next)
		fresh = next
	}
	return derived, tables, nil
}

// readProvides reads the provides columns of t's rows that match known.
func (s *Store) readProvides(ctx context.Context, q Querier, t *Table, known connector.Values) (connector.Values, error) {
	b := NewBuilder(t.d)
	cond, ok := t.matchCond(b, known)
	if !ok {
		return nil, nil
	}
	cols := make([]string, len(t.links.provides))
	for i, p := range t.links.provides {
		cols[i] = p.quoted
	}
	query := b.query("SELECT DISTINCT " + strings.Join(cols, ", ") + " FROM " + t.quoted + " WHERE " + cond)
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	rows, err := q.QueryContext(ctx, query.SQL, query.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := connector.NewValueSet(nil)
	values := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range values {
		ptrs[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, p := range t.links.provides {
			if v, ok := identifierText(values[i]); ok {
				out.Add(p.identifier, v)
			}
		}
	}
	return out.Values(), rows.Err()
}

// identifierText is a scanned value as the text an identifier holds: integers in canonical
// form (what Equal accepts for an integer column), bytes and strings as they are. NULL and empty
// values identify nothing.
func identifierText(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		s = x
	case []byte:
		s = string(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case int32:
		s = strconv.FormatInt(int64(x), 10)
	case uint64:
		s = strconv.FormatUint(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	case time.Time:
		s = x.Format(time.RFC3339Nano)
	default:
		if j, ok := JSONValue(x).(string); ok {
			s = j
		}
	}
	return s, s != ""
}
