package mongodb

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	"go.mongodb.org/mongo-driver/v2/bson"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// DefaultUnmappedMaxCollections caps the collections outside the mapping that a deep verification
// of the whole database searches.
const DefaultUnmappedMaxCollections = 1000

// Deep verification of the whole database (spec.verification.deepScope: database): besides the
// mapped collections, it reads every other collection of the databases the mapping names and
// reports strings that equal or contain one of the subject's values as unmapped findings by
// collection and field path ("shop.audit.payload"): leads for a human who then maps them, never
// remaining, since the mapping cannot erase them. A collection it cannot read is skipped and
// logged (its server code only) instead of failing the verification.

func deepScopeOf(spec *privacyv1alpha1.DataStoreSpec) privacyv1alpha1.DeepScope {
	if spec.Verification == nil || spec.Verification.DeepScope == "" {
		return privacyv1alpha1.DeepScopeMapped
	}
	return spec.Verification.DeepScope
}

func (s *Store) searchUnmapped(ctx context.Context, owned connector.Values) (int64, []connector.LocationCount, error) {
	log := logr.FromContextOrDiscard(ctx)
	values, folded := s.deepValues(owned)
	if len(values) == 0 {
		return 0, nil, nil
	}
	mapped := map[collectionName]bool{}
	var databases []string
	for _, m := range s.mappings {
		mapped[m.name] = true
		if !containsString(databases, m.name.database) {
			databases = append(databases, m.name.database)
		}
	}
	sort.Strings(databases)
	var total int64
	var found []connector.LocationCount
	searched := 0
	for _, db := range databases {
		octx, cancel := s.opCtx(ctx)
		names, err := s.client.Database(db).ListCollectionNames(octx, bson.D{})
		cancel()
		if err != nil {
			return 0, nil, err
		}
		sort.Strings(names)
		for _, coll := range names {
			name := collectionName{database: db, collection: coll}
			if mapped[name] || strings.HasPrefix(coll, "system.") {
				continue
			}
			if searched == s.opts.UnmappedMaxCollections {
				log.Info("deep verification of the whole database hit its cap: some collections were not searched", "cap", searched)
				return total, found, nil
			}
			searched++
			m := &mapping{name: name}
			counts, err := s.deepScan(ctx, m, nil, searchValues{values, folded}, nil)
			if err != nil {
				if ctx.Err() != nil {
					return 0, nil, ctx.Err()
				}
				log.Info("deep verification skipped a collection it could not read", "collection", name.String(), "code", codeOf(err))
				continue
			}
			paths := make([]string, 0, len(counts))
			for p := range counts {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			for _, p := range paths {
				total += counts[p]
				found = append(found, connector.LocationCount{Location: fmt.Sprintf("%s.%s", name, p), Records: counts[p]})
			}
		}
	}
	return total, found, nil
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// codeOf is the server's code of err for a log line, never its text.
func codeOf(err error) string {
	var e *connector.Error
	if errors.As(classify("verify", err, connector.Request{}), &e) {
		return e.Code
	}
	return ""
}
