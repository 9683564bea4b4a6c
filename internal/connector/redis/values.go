package redis

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// expansions are the single-valued identifier sets a pattern is expanded with
// (connector.Expansions).
func expansions(p *pattern, all connector.Values) []connector.Identifiers {
	return connector.Expansions(connector.TemplateNames(p.source), all)
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
