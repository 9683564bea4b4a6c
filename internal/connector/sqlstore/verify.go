package sqlstore

import (
	"context"
	"sort"
	"strings"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Verify counts what still identifies the subject where the mapping says it must not:
//   - delete tables: every matching row;
//   - mask tables: every matching row in which some masked column is not in its masked state
//     (NULL for every strategy, the marker for redact, 64 lower-case hex digits for hash). A
//     row still matching through a match column the mapping does not mask is the intended
//     result of masking, not a remainder;
//   - retain tables: matching rows count as retained, never as remaining.
//
// With req.Deep it also searches the searchable columns of delete and mask tables (except the
// match columns a mask table keeps) for any row equal to or containing an identifier value, and
// reports them under "table (deep: column)". With deepScope database it then searches the rest of
// the database and reports copies there as unmapped (unmapped.go).
func (s *Store) Verify(ctx context.Context, req connector.Request) (*connector.VerifyResult, error) {
	const op = "verify"
	ids := req.AllValues()
	tables, err := s.resolvePooled(ctx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	tx, done, err := s.reader(ctx, tables)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	defer done()
	if tables, err = s.bindAll(ctx, tx, tables, withShared(ids, req.Shared)); err != nil {
		return nil, s.fail(op, err, req)
	}
	res := &connector.VerifyResult{}
	counts, location, err := s.countTables(ctx, tx, tables, ids)
	if err != nil {
		return nil, s.failAt(op, location, err, req)
	}
	for k, t := range tables {
		n := counts[k]
		if n <= 0 {
			continue
		}
		loc := connector.LocationCount{Location: t.Location(), Records: n}
		if t.Mapping.Action == privacyv1alpha1.ActionRetain {
			loc.Reason = t.Mapping.RetainReason
			res.Retained += n
			res.RetainedLocations = append(res.RetainedLocations, loc)
		} else {
			res.Remaining += n
			res.RemainingLocations = append(res.RemainingLocations, loc)
		}
	}
	if res.Shared, res.SharedLocations, err = s.countShared(ctx, tx, tables, ids, req.Shared); err != nil {
		return nil, s.fail(op, err, req)
	}
	if req.Deep {
		search := s.deepSearchFor(tables, ids)
		for _, t := range tables {
			if t.Mapping.Action == privacyv1alpha1.ActionRetain {
				continue
			}
			found, err := s.deep(ctx, tx, t, search)
			if err != nil {
				return nil, s.failAt(op, t.Location(), err, req)
			}
			for _, loc := range found {
				res.Remaining += loc.Records
				res.RemainingLocations = append(res.RemainingLocations, loc)
			}
		}
		if s.searchesDatabase() {
			if res.Unmapped, res.UnmappedLocations, err = s.searchUnmapped(ctx, tables, ids); err != nil {
				return nil, s.fail(op, err, req)
			}
		}
	}
	return res, nil
}

func (s *Store) deep(ctx context.Context, q Querier, t *Table, search deepSearch) ([]connector.LocationCount, error) {
	query, cols, ok := t.deepQuery(search.values, search.foldedValues, search.allowIn(t))
	if !ok {
		return nil, nil
	}
	counts, err := s.countRow(ctx, q, query, len(cols))
	if err != nil {
		return nil, err
	}
	var found []connector.LocationCount
	for i, c := range cols {
		if counts[i] > 0 {
			found = append(found, connector.LocationCount{Location: t.DeepLocation(c.Name), Records: counts[i]})
		}
	}
	sort.Slice(found, func(i, j int) bool { return strings.Compare(found[i].Location, found[j].Location) < 0 })
	return found, nil
}
