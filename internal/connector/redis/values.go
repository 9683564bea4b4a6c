package redis

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// maxExpansions caps the keys one pattern is expanded to for one subject: a pattern naming two
// identifiers with a thousand values each would otherwise mean a million lookups.
const maxExpansions = 10000

// expansions are the single-valued identifier sets a pattern is expanded with: every combination
// of the values of the identifiers it names (a subject with two emails and three order ids gives
// "order:{email}:{orderId}" six keys). A pattern naming an identifier without values gets none.
func expansions(p *pattern, all connector.Values) []connector.Identifiers {
	out := []connector.Identifiers{{}}
	seen := map[string]bool{}
	for _, pt := range p.parts {
		name := pt.placeholder
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		values := all[name]
		if len(values) == 0 {
			return nil
		}
		next := make([]connector.Identifiers, 0, len(out)*len(values))
		for _, ids := range out {
			for _, v := range values {
				if len(next) == maxExpansions {
					break
				}
				grown := make(connector.Identifiers, len(ids)+1)
				for k, x := range ids {
					grown[k] = x
				}
				grown[name] = v
				next = append(next, grown)
			}
		}
		out = next
	}
	return out
}

// keysOf returns the keys of m for one expansion; ok is false when the pattern does not apply.
func (c *client) keysOf(ctx context.Context, op string, m *mapping, ids connector.Identifiers) ([]string, bool, error) {
	target, ok, err := m.pattern.expand(c.keyIdentifiers(ids))
	if err != nil {
		return nil, false, refused(op, m.pattern.source, err)
	}
	if !ok {
		return nil, false, nil
	}
	if m.pattern.glob {
		keys, err := c.scanMatch(ctx, target)
		if err != nil {
			return nil, false, fail(ctx, op, err, ids)
		}
		return keys, true, nil
	}
	n, err := c.rdb.Exists(ctx, target).Result()
	if err != nil {
		return nil, false, fail(ctx, op, err, ids)
	}
	if n > 0 {
		return []string{target}, true, nil
	}
	return nil, true, nil
}
